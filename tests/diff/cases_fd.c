/*
 * cases_fd.c - differential cases of the fd family (see diff.h).
 */
#include "diff.h"
