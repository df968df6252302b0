/* startup.c: the smallest bare-metal start for a Cortex-M core under QEMU (edge-echo's
 * device runtimes and examples/cortex-m). The vector table, a reset handler that copies
 * .data, zeroes .bss and turns the FPU on where there is one, and semihosting (BKPT 0xAB)
 * for files, text and the exit code. Symbols come from link.ld. */
#include <stdint.h>

#include "semihost.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);

void Reset_Handler(void);
void Fault_Handler(void);
void SysTick_Handler(void);

volatile uint32_t ee_systick_wraps;

__attribute__((section(".isr_vector"), used))
static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&_estack, Reset_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    0, 0, 0, 0,
    Fault_Handler, Fault_Handler, 0,
    Fault_Handler, SysTick_Handler,
};

int sh_call(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile ("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void sh_exit(int code)
{
    /* ADP_Stopped_ApplicationExit (0x20026) exits QEMU with 0; anything else with 1. */
    for (;;) sh_call(0x18, (const void *)(uintptr_t)(code == 0 ? 0x20026u : 0x20023u));
}

void sh_print(const char *text)
{
    sh_call(0x04, text);
}

void Fault_Handler(void)
{
    sh_print("edge-echo firmware: hard fault\n");
    sh_exit(3);
}

void SysTick_Handler(void)
{
    ee_systick_wraps++;
}

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; dst++) *dst = 0;
#if defined(__ARM_FP)
    /* CP10 and CP11 full access (CPACR), before the first floating-point instruction. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile ("dsb\n\tisb" ::: "memory");
#endif
    sh_exit(main());
}
