/* main.c: stream the echo through many-to-many's C source on a Cortex-M4F, one value a step.
 *
 * The model is exported/many-to-many.c and .h (edge-echo export --c-source): it echoes the
 * sequence it is fed. Each time step goes through many_to_many_step, as a device app feeds a
 * sensor reading when it arrives; the state struct is the only RAM the model keeps. The text
 * goes out over semihosting (QEMU prints it); on a real board write it to a UART instead. */
#include <stdint.h>

#include "many-to-many.h"
#include "semihost.h"

/* "-0.123": three decimals without printf (newlib-nano's printf has no float by default). */
static char *format(char *out, float v)
{
    int32_t milli = (int32_t)(v * 1000.0f + (v < 0.0f ? -0.5f : 0.5f));
    if (milli < 0) {
        *out++ = '-';
        milli = -milli;
    }
    *out++ = (char)('0' + milli / 1000 % 10);
    *out++ = '.';
    *out++ = (char)('0' + milli / 100 % 10);
    *out++ = (char)('0' + milli / 10 % 10);
    *out++ = (char)('0' + milli % 10);
    return out;
}

int main(void)
{
    static const float x[MANY_TO_MANY_STEPS] = {0.0f, 0.2f, 0.4f, 0.6f, 0.8f};
    many_to_many_state state;
    char line[40];
    int t;
    many_to_many_reset(&state); /* at the start of every sequence */
    sh_print("many-to-many on Cortex-M4F: step, input, echo\n");
    for (t = 0; t < MANY_TO_MANY_STEPS; t++) {
        float y;
        char *p = line;
        many_to_many_step(&state, &x[t], &y);
        *p++ = (char)('0' + t);
        *p++ = ' ';
        p = format(p, x[t]);
        *p++ = ' ';
        p = format(p, y);
        *p++ = '\n';
        *p = '\0';
        sh_print(line);
    }
    return 0;
}
