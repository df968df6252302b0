/* harness.c: edge-echo's verify program for a model's C source (NAME.c / NAME.h), the same on
 * every target; what it asks of the target (files, a counter) is in platform.h.
 *
 * Reads in.bin (over semihosting on a bare-metal core): uint32 magic "EEIN", count, then count
 * sequences of STEPS x FEATURES float32. Writes out.bin: uint32 magic "EEOU", count, two
 * calibration loops' counter ticks, then two blocks of count records, each a sequence's outputs (Y_SIZE
 * float32) and two uint32. The first block runs every sequence through NAME_predict (its
 * ticks, 0); the second reads in.bin again and runs each through NAME_reset then NAME_step
 * per time step (the steps' summed ticks, the largest one step's). A whole-sequence model
 * (built with -DEE_CALL_H) writes the first block alone, its second uint32 predict's status.
 * The calibration loops (exactly 2 x EE_SPIN_A and 2 x EE_SPIN_B instructions) turn the
 * counter's ticks into instructions (on Cortex-M, SysTick under qemu -icount shift=0: one
 * instruction is one nanosecond of the emulated clock; on RISC-V, minstret itself). Built
 * with -DEE_MODEL_H="\"NAME.h\"" -DEE_PREFIX=NAME -DEE_UPPER=NAME_UPPER. */
#include <stdint.h>
#include <string.h>

#include "platform.h"
#include EE_MODEL_H

#define EE_CAT_(a, b) a##b
#define EE_CAT(a, b) EE_CAT_(a, b)
#define EE_FN(suffix) EE_CAT(EE_PREFIX, suffix)
#define EE_MACRO(suffix) EE_CAT(EE_UPPER, suffix)
#ifdef EE_CALL_H
/* A whole-sequence model (NAME_predict alone): EE_WORDS 32-bit words a sequence, every input
 * in the model's order (float32, or int32 token ids), and EE_CALL(x, y), its NAME_predict on
 * them, giving its status (0, or -1 for a token id outside the vocabulary). Only the first
 * block is written. */
#include EE_CALL_H
#define EE_X_SIZE EE_WORDS
#define EE_MODES 1u
#else
#define EE_X_SIZE (EE_MACRO(_STEPS) * EE_MACRO(_FEATURES))
#define EE_MODES 2u
#endif
#define EE_SPIN_A 20000u
#define EE_SPIN_B 120000u

static float x[EE_X_SIZE];
static float y[EE_MACRO(_Y_SIZE)];
#ifndef EE_CALL_H
static EE_FN(_state) state;
#endif

static int fail(const char *why)
{
    ee_say("edge-echo harness: ");
    ee_say(why);
    ee_say("\n");
    return 2;
}

int main(void)
{
    uint32_t head[2], figures[2], i, t0, mode;
#ifndef EE_CALL_H
    uint32_t t, ticks, most;
#endif
    int in, out;
    ee_start();
    ee_spin(100u); /* past the first reload */
    t0 = ee_now();
    ee_spin(EE_SPIN_A);
    figures[0] = ee_now() - t0;
    t0 = ee_now();
    ee_spin(EE_SPIN_B);
    figures[1] = ee_now() - t0;
    in = ee_open("in.bin", 0);
    out = ee_open("out.bin", 1);
    if (in < 0 || out < 0) return fail("cannot open in.bin or out.bin");
    if (!ee_read(in, head, sizeof head) || head[0] != 0x4E494545u)
        return fail("in.bin is not an edge-echo input");
    {
        const uint32_t out_head[2] = {0x554F4545u, head[1]};
        if (!ee_write(out, out_head, sizeof out_head) || !ee_write(out, figures, sizeof figures))
            return fail("cannot write out.bin");
    }
    for (mode = 0u; mode < EE_MODES; mode++) { /* NAME_predict, then NAME_reset and NAME_step */
        if (mode == 1u && !ee_seek(in, sizeof head)) return fail("cannot seek in.bin");
        for (i = 0; i < head[1]; i++) {
            uint32_t result[2];
            if (!ee_read(in, x, sizeof x)) return fail("in.bin ends early");
            if (mode == 0u) {
                t0 = ee_now();
#ifdef EE_CALL_H
                result[1] = (uint32_t)(EE_CALL(x, y));
#else
                EE_FN(_predict)(x, y);
                result[1] = 0u;
#endif
                result[0] = ee_now() - t0;
            }
#ifndef EE_CALL_H
            else {
                EE_FN(_reset)(&state);
                ticks = 0u;
                most = 0u;
                for (t = 0; t < EE_MACRO(_STEPS); t++) {
                    const uint32_t y_at = EE_MACRO(_Y_SIZE) == EE_MACRO(_OUTPUTS) ? 0u : t * EE_MACRO(_OUTPUTS);
                    uint32_t one;
                    t0 = ee_now();
                    EE_FN(_step)(&state, x + t * EE_MACRO(_FEATURES), y + y_at);
                    one = ee_now() - t0;
                    ticks += one;
                    if (one > most) most = one;
                }
                result[0] = ticks;
                result[1] = most;
            }
#endif
            if (!ee_write(out, y, sizeof y) || !ee_write(out, result, sizeof result))
                return fail("cannot write out.bin");
        }
    }
    return 0;
}
