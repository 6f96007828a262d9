/*
 * cases_io.c - differential cases of the io family (see diff.h).
 */
#include "diff.h"
