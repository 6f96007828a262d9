/*
 * families.c - which hook families are on. The preload constructor
 * (preload/init.c) sets these from GREEN_HOOKS; a program linking libgreen
 * explicitly gets GREEN_HOOK_DEFAULT: blocking calls in green threads are
 * cooperative, pthreads stay real threads unless GREEN_HOOKS adds "thread".
 */
#define _GNU_SOURCE
#include "hooks.h"

unsigned green__hook_families = GREEN_HOOK_DEFAULT;
bool green__preloaded;
