/* harness.c: edge-echo's verify firmware for a model's C source (NAME.c / NAME.h).
 *
 * Reads in.bin over semihosting (uint32 magic "EEIN", count, then count sequences of
 * STEPS x FEATURES float32) and writes out.bin: uint32 magic "EEOU", count, two calibration
 * loops' SysTick ticks, then two blocks of count records, each a sequence's outputs (Y_SIZE
 * float32) and two uint32. The first block runs every sequence through NAME_predict (its
 * ticks, 0); the second reads in.bin again and runs each through NAME_reset then NAME_step
 * per time step (the steps' summed ticks, the largest one step's). A whole-sequence model
 * (built with -DEE_CALL_H) writes the first block alone, its second uint32 predict's status.
 * Under qemu -icount shift=0 one instruction is one nanosecond of the emulated clock, so the
 * calibration loops (exactly 2 x EE_SPIN_A and 2 x EE_SPIN_B instructions) turn ticks into
 * instructions. Built with -DEE_MODEL_H="\"NAME.h\"" -DEE_PREFIX=NAME -DEE_UPPER=NAME_UPPER. */
#include <stdint.h>
#include <string.h>

#include "semihost.h"
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

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

extern volatile uint32_t ee_systick_wraps;

static float x[EE_X_SIZE];
static float y[EE_MACRO(_Y_SIZE)];
#ifndef EE_CALL_H
static EE_FN(_state) state;
#endif

static uint32_t now(void)
{
    uint32_t wraps, value;
    do {
        wraps = ee_systick_wraps;
        value = SYST_CVR;
    } while (wraps != ee_systick_wraps);
    return (wraps << 24) + (0xFFFFFFu - value);
}

/* Exactly 2 n instructions: SUBS and BNE, n times. */
__attribute__((noinline)) static void spin(uint32_t n)
{
    __asm__ volatile (".syntax unified\n1:\tsubs %0, #1\n\tbne 1b" : "+l"(n) : : "cc");
}

static int open_file(const char *name, int mode)
{
    const uint32_t args[3] = {(uint32_t)(uintptr_t)name, (uint32_t)mode, (uint32_t)strlen(name)};
    return sh_call(0x01, args);
}

static int read_all(int fd, void *buf, uint32_t len)
{
    const uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, len};
    return sh_call(0x06, args) == 0;
}

static int seek_to(int fd, uint32_t offset)
{
    const uint32_t args[2] = {(uint32_t)fd, offset};
    return sh_call(0x0A, args) == 0;
}

static int write_all(int fd, const void *buf, uint32_t len)
{
    const uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, len};
    return sh_call(0x05, args) == 0;
}

static int fail(const char *why)
{
    sh_print("edge-echo firmware: ");
    sh_print(why);
    sh_print("\n");
    return 2;
}

int main(void)
{
    uint32_t head[2], figures[2], i, t0, mode;
#ifndef EE_CALL_H
    uint32_t t, ticks, most;
#endif
    int in, out;
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 7u; /* the processor clock, the wrap interrupt, on */
    spin(100u);   /* past the first reload */
    t0 = now();
    spin(EE_SPIN_A);
    figures[0] = now() - t0;
    t0 = now();
    spin(EE_SPIN_B);
    figures[1] = now() - t0;
    in = open_file("in.bin", 1);
    out = open_file("out.bin", 5);
    if (in < 0 || out < 0) return fail("cannot open in.bin or out.bin");
    if (!read_all(in, head, sizeof head) || head[0] != 0x4E494545u)
        return fail("in.bin is not an edge-echo input");
    {
        const uint32_t out_head[2] = {0x554F4545u, head[1]};
        if (!write_all(out, out_head, sizeof out_head) || !write_all(out, figures, sizeof figures))
            return fail("cannot write out.bin");
    }
    for (mode = 0u; mode < EE_MODES; mode++) { /* NAME_predict, then NAME_reset and NAME_step */
        if (mode == 1u && !seek_to(in, sizeof head)) return fail("cannot seek in.bin");
        for (i = 0; i < head[1]; i++) {
            uint32_t result[2];
            if (!read_all(in, x, sizeof x)) return fail("in.bin ends early");
            if (mode == 0u) {
                t0 = now();
#ifdef EE_CALL_H
                result[1] = (uint32_t)(EE_CALL(x, y));
#else
                EE_FN(_predict)(x, y);
                result[1] = 0u;
#endif
                result[0] = now() - t0;
            }
#ifndef EE_CALL_H
            else {
                EE_FN(_reset)(&state);
                ticks = 0u;
                most = 0u;
                for (t = 0; t < EE_MACRO(_STEPS); t++) {
                    const uint32_t y_at = EE_MACRO(_Y_SIZE) == EE_MACRO(_OUTPUTS) ? 0u : t * EE_MACRO(_OUTPUTS);
                    uint32_t one;
                    t0 = now();
                    EE_FN(_step)(&state, x + t * EE_MACRO(_FEATURES), y + y_at);
                    one = now() - t0;
                    ticks += one;
                    if (one > most) most = one;
                }
                result[0] = ticks;
                result[1] = most;
            }
#endif
            if (!write_all(out, y, sizeof y) || !write_all(out, result, sizeof result))
                return fail("cannot write out.bin");
        }
    }
    return 0;
}
