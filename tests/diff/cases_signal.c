/*
 * cases_signal.c - differential cases of the signal family (see diff.h).
 */
#include "diff.h"
