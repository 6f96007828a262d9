/*
 * prog_fortified - built with _FORTIFY_SOURCE=2, as Debian builds its
 * packages: read/recv/recvfrom into buffers of known size become glibc's
 * __read_chk/__recv_chk/__recvfrom_chk. A pthread blocks in each while
 * another pthread writes 50 ms later; under the shim both are green
 * threads of one OS thread, so if a fortified entry point were not hooked
 * its blocking call would stop the writer forever (an alarm then prints
 * "HANG"). Prints "HOOK ..." with the fortified names, then
 * "OK read_chk", "OK recv_chk", "OK recvfrom_chk".
 */
#include "progs_io.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

static int sv[2];
static size_t want = 4;            /* not a constant: forces the _chk path */
static int which;

static void *late_writer(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    prog_write_all(sv[1], "ping", 4);
    return NULL;
}

static void *blocked_reader(void *arg)
{
    (void)arg;
    char buf[16];
    ssize_t r = -1;
    if (which == 0)
        r = read(sv[0], buf, want);
    else if (which == 1)
        r = recv(sv[0], buf, want, 0);
    else
        r = recvfrom(sv[0], buf, want, 0, NULL, NULL);
    return (void *)(long)(r == 4 && !memcmp(buf, "ping", 4));
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "HANG\n";
    ssize_t w = write(1, msg, sizeof msg - 1);
    (void)w;
    _exit(3);
}

int main(int argc, char **argv)
{
    (void)argv;
    want += (size_t)argc - 1;
    printf("HOOK read=%s __read_chk=%s __recv_chk=%s __recvfrom_chk=%s pthread_create=%s\n",
           prog_lib_of("read"), prog_lib_of("__read_chk"), prog_lib_of("__recv_chk"),
           prog_lib_of("__recvfrom_chk"), prog_lib_of("pthread_create"));
    fflush(stdout);
    signal(SIGALRM, on_alarm);
    alarm(10);
    static const char *names[] = { "read_chk", "recv_chk", "recvfrom_chk" };
    for (which = 0; which < 3; which++) {
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        pthread_t r, w;
        void *ok;
        pthread_create(&r, NULL, blocked_reader, NULL);
        pthread_create(&w, NULL, late_writer, NULL);
        pthread_join(r, &ok);
        pthread_join(w, NULL);
        printf("%s %s\n", ok ? "OK" : "FAIL", names[which]);
        close(sv[0]);
        close(sv[1]);
    }
    return 0;
}
