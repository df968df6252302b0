/* platform_cortexm.c: harness.c's platform on a Cortex-M core under qemu-system-arm: files
 * over semihosting (startup.c's sh_call), and SysTick as the counter (-icount shift=0: one
 * instruction is one nanosecond of the emulated clock). */
#include <stdint.h>
#include <string.h>

#include "platform.h"
#include "semihost.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

extern volatile uint32_t ee_systick_wraps;

void ee_start(void)
{
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 7u; /* the processor clock, the wrap interrupt, on */
}

uint32_t ee_now(void)
{
    uint32_t wraps, value;
    do {
        wraps = ee_systick_wraps;
        value = SYST_CVR;
    } while (wraps != ee_systick_wraps);
    return (wraps << 24) + (0xFFFFFFu - value);
}

/* Exactly 2 n instructions: SUBS and BNE, n times. */
__attribute__((noinline)) void ee_spin(uint32_t n)
{
    __asm__ volatile (".syntax unified\n1:\tsubs %0, #1\n\tbne 1b" : "+l"(n) : : "cc");
}

int ee_open(const char *name, int writing)
{
    /* Semihosting's open modes: 1 is "rb", 5 is "wb". */
    const uint32_t args[3] = {(uint32_t)(uintptr_t)name, writing ? 5u : 1u, (uint32_t)strlen(name)};
    return sh_call(0x01, args);
}

int ee_read(int fd, void *buf, uint32_t len)
{
    const uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, len};
    return sh_call(0x06, args) == 0;
}

int ee_seek(int fd, uint32_t offset)
{
    const uint32_t args[2] = {(uint32_t)fd, offset};
    return sh_call(0x0A, args) == 0;
}

int ee_write(int fd, const void *buf, uint32_t len)
{
    const uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, len};
    return sh_call(0x05, args) == 0;
}

void ee_say(const char *text)
{
    sh_print(text);
}
