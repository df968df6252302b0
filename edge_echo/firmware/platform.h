/* platform.h: what harness.c asks of a target (one platform file per kind of target:
 * platform_cortexm.c over semihosting and SysTick, platform_hosted.c over stdio). */
#ifndef EE_PLATFORM_H
#define EE_PLATFORM_H

#include <stdint.h>

void ee_start(void);                                 /* the counter on */
uint32_t ee_now(void);                               /* the counter's ticks */
void ee_spin(uint32_t n);                            /* exactly 2 n instructions */
int ee_open(const char *name, int writing);          /* a handle, or -1 */
int ee_read(int fd, void *buf, uint32_t len);        /* 1 when len bytes were read */
int ee_write(int fd, const void *buf, uint32_t len); /* 1 when len bytes were written */
int ee_seek(int fd, uint32_t offset);                /* 1 when done */
void ee_say(const char *text);

#endif
