/*
 * tlsmod.c - a shared library with thread-local storage of its own, which
 * prog_tls loads with dlopen after its threads started: an initialised
 * __thread variable (tdata) and a zeroed array (tbss).
 */
__thread int tlsmod_value = 5;
__thread char tlsmod_pad[256];

int tlsmod_get(void) { return tlsmod_value + tlsmod_pad[255]; }
void tlsmod_set(int v) { tlsmod_value = v; }
