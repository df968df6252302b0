/* platform_hosted.c: harness.c's platform where a C library gives stdio: picolibc over
 * semihosting on RISC-V (qemu-system-riscv32), glibc under qemu-aarch64 (user mode). The
 * counter: RISC-V's minstret, the core's own retired-instruction count (exact under qemu
 * -icount); on aarch64, ee_mark, whose every entry the emulator's instruction trace shows
 * (targets/aarch64.py counts the instructions between them), so ee_now reads 0 there. */
#include <stdint.h>
#include <stdio.h>

#include "platform.h"

static FILE *files[2];

void ee_start(void)
{
}

#if defined(__riscv)
uint32_t ee_now(void)
{
    uint32_t value;
    /* csrr value, minstret (csrrs rd, 0xB02, x0), spelled out: rv32imac names no Zicsr. */
    __asm__ volatile (".insn i 0x73, 2, %0, x0, -1278" : "=r"(value));
    return value;
}

/* Exactly 2 n instructions: ADDI and BNEZ, n times. */
__attribute__((noinline)) void ee_spin(uint32_t n)
{
    __asm__ volatile ("1:\n\taddi %0, %0, -1\n\tbnez %0, 1b" : "+r"(n));
}
#elif defined(__aarch64__)
__attribute__((noinline)) void ee_mark(void)
{
    __asm__ volatile ("" ::: "memory");
}

uint32_t ee_now(void)
{
    ee_mark();
    return 0u;
}

/* Exactly 2 n instructions: SUBS and B.NE, n times. */
__attribute__((noinline)) void ee_spin(uint32_t n)
{
    __asm__ volatile ("1:\n\tsubs %w0, %w0, #1\n\tb.ne 1b" : "+r"(n) : : "cc");
}
#else
#error "platform_hosted.c: no counter for this architecture"
#endif

int ee_open(const char *name, int writing)
{
    int fd = writing ? 1 : 0;
    files[fd] = fopen(name, writing ? "wb" : "rb");
    return files[fd] ? fd : -1;
}

int ee_read(int fd, void *buf, uint32_t len)
{
    return fread(buf, 1, len, files[fd]) == len;
}

int ee_write(int fd, const void *buf, uint32_t len)
{
    return fwrite(buf, 1, len, files[fd]) == len && (fd != 1 || fflush(files[fd]) == 0);
}

int ee_seek(int fd, uint32_t offset)
{
    return fseek(files[fd], (long)offset, SEEK_SET) == 0;
}

void ee_say(const char *text)
{
    fputs(text, stderr);
}
