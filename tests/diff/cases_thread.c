/*
 * cases_thread.c - differential cases of the thread family (see diff.h).
 */
#include "diff.h"
