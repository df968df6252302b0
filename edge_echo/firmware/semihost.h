/* semihost.h: ARM semihosting calls (QEMU -semihosting-config enable=on,target=native). */
#ifndef EE_SEMIHOST_H
#define EE_SEMIHOST_H

int sh_call(int op, const void *arg);
void sh_exit(int code);
void sh_print(const char *text);

#endif
