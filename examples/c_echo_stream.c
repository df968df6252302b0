/* Streams the echo through the generated C of the many-to-many model, no runtime at all.
 *
 *   edge-echo export --c-source          (writes exported/many-to-many.c and .h)
 *   cc -std=c99 -O2 -I exported examples/c_echo_stream.c exported/many-to-many.c -lm
 *   printf '0.0\n0.2\n0.4\n0.6\n0.8\n' | ./a.out
 *
 * One value per line on stdin, one output per line on stdout as each arrives;
 * the state is reset at the start of every sequence of MANY_TO_MANY_STEPS values.
 */
#include <stdio.h>

#include "many-to-many.h"

int main(void)
{
    many_to_many_state state;
    float x_t[MANY_TO_MANY_FEATURES], y_t[MANY_TO_MANY_OUTPUTS];
    long t = 0;

    while (scanf("%f", &x_t[0]) == 1) {
        if (t % MANY_TO_MANY_STEPS == 0)
            many_to_many_reset(&state);        /* a new sequence starts from zero state */
        many_to_many_step(&state, x_t, y_t);   /* one time step in, its output out */
        printf("%.1f\n", (double)y_t[0]);
        fflush(stdout);
        t++;
    }
    return 0;
}
