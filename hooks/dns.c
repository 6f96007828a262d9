/*
 * dns.c - getaddrinfo, getnameinfo, gethostbyname* and gethostbyaddr* on
 * the worker pool.
 *
 * The resolver blocks in ways no descriptor wait can cover (files, NSS
 * modules, its own sockets), so each lookup runs on a real worker thread
 * (green_offload) while only the caller parks; the other green threads keep
 * running.
 *
 * Ownership. green_offload may return early (the caller was killed or a
 * timeout scope expired) while the worker still runs the lookup. So a
 * lookup never works on the caller's memory: its job copies the inputs,
 * has its own output buffers and a reference count (caller + worker); the
 * caller copies the results out when it got them, and whoever drops the
 * last reference frees the job and whatever result nobody took (an
 * abandoned getaddrinfo list, for instance). If the pool cannot take the
 * job (ENOMEM, no thread could be started) the lookup runs inline and
 * blocks the OS thread: slower, still correct.
 *
 * gethostbyname/gethostbyname2/gethostbyaddr return static storage; glibc's is one
 * buffer per process. Ours is one per OS thread, filled from the
 * reentrant variant (relocated out of the job's buffer), and h_errno is
 * set on the caller's OS thread. As natively, the next call overwrites it.
 *
 * getnameinfo with NI_NUMERICHOST and NI_NUMERICSERV cannot block and
 * passes straight through.
 */
#define _GNU_SOURCE
#include "hooks_proc.h"
#include <stdatomic.h>
#include <string.h>

/* The common head of every lookup job. */
struct job {
    atomic_int refs;               /* caller + worker */
    void (*run)(struct job *);     /* the lookup, on the worker */
    void (*cleanup)(struct job *); /* frees what nobody took; may be NULL */
};

static void job_unref(struct job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    if (j->cleanup)
        j->cleanup(j);
    free(j);
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    j->run(j);
    job_unref(j);
    return NULL;
}

/* Run j on a worker (inline if the pool is unavailable). Returns 0 when
 * the results are ready, or an errno value (ECANCELED, ETIMEDOUT) when the
 * caller stopped waiting. Either way the caller still holds one reference.
 * May switch. */
static int job_run(struct job *j)
{
    atomic_store(&j->refs, 2);         /* + the worker's */
    if (green_offload(job_main, j, NULL) == 0)
        return 0;
    int e = errno;
    if (e == ENOMEM || e == EAGAIN) {     /* never queued */
        j->run(j);
        atomic_store(&j->refs, 1);
        return 0;
    }
    return e;
}

/* --------------------------------------------------------- getaddrinfo */

struct gai_job {
    struct job head;
    char *node, *service;          /* copies, or NULL */
    struct addrinfo hints;         /* copy (pointers cleared) */
    bool has_hints;
    struct addrinfo *res;          /* result, until the caller takes it */
    int ret;                       /* getaddrinfo's return value */
    int err;                       /* worker's errno (EAI_SYSTEM) */
};

static void gai_run(struct job *h)
{
    struct gai_job *j = (struct gai_job *)h;
    j->ret = green__real.getaddrinfo(j->node, j->service,
                                     j->has_hints ? &j->hints : NULL, &j->res);
    j->err = errno;
}

static void gai_cleanup(struct job *h)
{
    struct gai_job *j = (struct gai_job *)h;
    if (j->res)
        freeaddrinfo(j->res);
    free(j->node);
    free(j->service);
}

int green_hook_getaddrinfo(const char *node, const char *service,
                           const struct addrinfo *hints, struct addrinfo **res)
{
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_DNS))
        return green__real.getaddrinfo(node, service, hints, res);
    struct gai_job *j = calloc(1, sizeof *j);
    if (!j)
        return EAI_MEMORY;
    j->head = (struct job){ .run = gai_run, .cleanup = gai_cleanup };
    atomic_init(&j->head.refs, 1);   /* the caller's */
    j->node = node ? strdup(node) : NULL;
    j->service = service ? strdup(service) : NULL;
    if ((node && !j->node) || (service && !j->service)) {
        job_unref(&j->head);
        return EAI_MEMORY;
    }
    if (hints) {
        j->hints = *hints;
        j->hints.ai_addr = NULL;
        j->hints.ai_canonname = NULL;
        j->hints.ai_next = NULL;
        j->has_hints = true;
    }
    int e = job_run(&j->head);
    int ret;
    if (e) {
        ret = EAI_SYSTEM;
    } else {
        ret = j->ret;
        e = j->err;
        if (ret == 0) {
            *res = j->res;
            j->res = NULL;
        }
    }
    job_unref(&j->head);
    errno = e;
    return ret;
}

/* --------------------------------------------------------- getnameinfo */

struct gni_job {
    struct job head;
    struct sockaddr_storage sa;    /* copy of the address */
    socklen_t salen;
    char *host, *serv;             /* own output buffers, or NULL */
    socklen_t hostlen, servlen;
    int flags;
    int ret, err;
};

static void gni_run(struct job *h)
{
    struct gni_job *j = (struct gni_job *)h;
    j->ret = green__real.getnameinfo((struct sockaddr *)&j->sa, j->salen,
                                     j->host, j->hostlen, j->serv, j->servlen,
                                     j->flags);
    j->err = errno;
}

static void gni_cleanup(struct job *h)
{
    struct gni_job *j = (struct gni_job *)h;
    free(j->host);
    free(j->serv);
}

int green_hook_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
                           socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
    green__real_init();
    bool numeric = (flags & NI_NUMERICHOST) && (flags & NI_NUMERICSERV);
    if (!green__hook_on(GREEN_HOOK_DNS) || numeric || !sa ||
        salen > sizeof(struct sockaddr_storage))
        return green__real.getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
    struct gni_job *j = calloc(1, sizeof *j);
    if (!j)
        return EAI_MEMORY;
    j->head = (struct job){ .run = gni_run, .cleanup = gni_cleanup };
    atomic_init(&j->head.refs, 1);   /* the caller's */
    memcpy(&j->sa, sa, salen);
    j->salen = salen;
    j->flags = flags;
    j->hostlen = host ? hostlen : 0;
    j->servlen = serv ? servlen : 0;
    j->host = host && hostlen ? malloc(hostlen) : NULL;
    j->serv = serv && servlen ? malloc(servlen) : NULL;
    if ((host && hostlen && !j->host) || (serv && servlen && !j->serv)) {
        job_unref(&j->head);
        return EAI_MEMORY;
    }
    int e = job_run(&j->head);
    int ret = EAI_SYSTEM;
    if (!e) {
        ret = j->ret;
        e = j->err;
        if (ret == 0 && j->host)
            memcpy(host, j->host, hostlen);
        if (ret == 0 && j->serv)
            memcpy(serv, j->serv, servlen);
    }
    job_unref(&j->head);
    errno = e;
    return ret;
}

/* ---------------------------------------------------- gethostbyname*_r */

/* What a gethostby* lookup asks: a name (af -1: gethostbyname_r, which
 * picks the family itself) or, when name is NULL, an address. */
struct ghb_query {
    const char *name;
    int af;
    const void *addr;
    socklen_t addrlen;
};

struct ghb_job {
    struct job head;
    char *name;                    /* copy, or NULL for an address lookup */
    int af;                        /* -1: gethostbyname_r (no family) */
    unsigned char addr[16];        /* copy of the address (in6_addr at most) */
    socklen_t addrlen;
    struct hostent he;             /* result, pointing into buf */
    struct hostent *result;        /* &he on success, NULL otherwise */
    char *buf;                     /* own buffer of buflen bytes */
    size_t buflen;
    int herr, ret;
};

static void ghb_run(struct job *h)
{
    struct ghb_job *j = (struct ghb_job *)h;
    if (!j->name)
        j->ret = green__real.gethostbyaddr_r(j->addr, j->addrlen, j->af, &j->he, j->buf,
                                             j->buflen, &j->result, &j->herr);
    else if (j->af < 0)
        j->ret = green__real.gethostbyname_r(j->name, &j->he, j->buf, j->buflen,
                                             &j->result, &j->herr);
    else
        j->ret = green__real.gethostbyname2_r(j->name, j->af, &j->he, j->buf,
                                              j->buflen, &j->result, &j->herr);
}

static void ghb_cleanup(struct job *h)
{
    struct ghb_job *j = (struct ghb_job *)h;
    free(j->name);
    free(j->buf);
}

/* Pointer p into [from, from+len) moved to the same offset in to. */
static void *reloc(void *p, const char *from, size_t len, char *to)
{
    const char *c = p;
    if (c >= from && c < from + len)
        return to + (c - from);
    return p;
}

static void reloc_list(char **list, const char *from, size_t len, char *to)
{
    for (size_t i = 0; list && list[i]; i++)
        list[i] = reloc(list[i], from, len, to);
}

/* Copy the job's hostent into the caller's ret/buf. */
static void ghb_copy_out(struct ghb_job *j, struct hostent *ret, char *buf)
{
    memcpy(buf, j->buf, j->buflen);
    *ret = j->he;
    ret->h_name = reloc(j->he.h_name, j->buf, j->buflen, buf);
    ret->h_aliases = reloc(j->he.h_aliases, j->buf, j->buflen, buf);
    ret->h_addr_list = reloc(j->he.h_addr_list, j->buf, j->buflen, buf);
    reloc_list(ret->h_aliases, j->buf, j->buflen, buf);
    reloc_list(ret->h_addr_list, j->buf, j->buflen, buf);
}

static int ghb(const struct ghb_query *q, struct hostent *ret, char *buf,
               size_t buflen, struct hostent **result, int *h_errnop)
{
    *result = NULL;
    struct ghb_job *j = calloc(1, sizeof *j);
    if (!j)
        return ENOMEM;
    j->head = (struct job){ .run = ghb_run, .cleanup = ghb_cleanup };
    atomic_init(&j->head.refs, 1);   /* the caller's */
    j->name = q->name ? strdup(q->name) : NULL;
    j->af = q->af;
    if (!q->name) {
        memcpy(j->addr, q->addr, q->addrlen);
        j->addrlen = q->addrlen;
    }
    j->buflen = buflen;
    j->buf = malloc(buflen ? buflen : 1);
    if ((q->name && !j->name) || !j->buf) {
        job_unref(&j->head);
        return ENOMEM;
    }
    int e = job_run(&j->head);
    if (!e) {
        e = j->ret;
        *h_errnop = j->herr;
        if (j->result) {
            ghb_copy_out(j, ret, buf);
            *result = ret;
        }
    }
    job_unref(&j->head);
    return e;
}

int green_hook_gethostbyname_r(const char *name, struct hostent *ret, char *buf,
                               size_t buflen, struct hostent **result, int *h_errnop)
{
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_DNS) || !name)
        return green__real.gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
    struct ghb_query q = { .name = name, .af = -1 };
    return ghb(&q, ret, buf, buflen, result, h_errnop);
}

int green_hook_gethostbyname2_r(const char *name, int af, struct hostent *ret,
                                char *buf, size_t buflen, struct hostent **result,
                                int *h_errnop)
{
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_DNS) || !name || af < 0)
        return green__real.gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
    struct ghb_query q = { .name = name, .af = af };
    return ghb(&q, ret, buf, buflen, result, h_errnop);
}

/* Addresses longer than an in6_addr cannot be asked for: pass through. */
static bool addr_ok(const void *addr, socklen_t len)
{
    return addr && len <= 16;
}

int green_hook_gethostbyaddr_r(const void *addr, socklen_t len, int type,
                               struct hostent *ret, char *buf, size_t buflen,
                               struct hostent **result, int *h_errnop)
{
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_DNS) || !addr_ok(addr, len))
        return green__real.gethostbyaddr_r(addr, len, type, ret, buf, buflen, result,
                                           h_errnop);
    struct ghb_query q = { .af = type, .addr = addr, .addrlen = len };
    return ghb(&q, ret, buf, buflen, result, h_errnop);
}

/* ------------------------------------------------------ gethostbyname */

/* The static result of gethostbyname on this OS thread. */
static __thread struct hostent tls_he;
static __thread char *tls_buf;
static __thread size_t tls_len;

static struct hostent *ghb_static(const struct ghb_query *q)
{
    struct hostent *result = NULL;
    int herr = 0;
    for (size_t len = tls_len ? tls_len : 1024; len <= (1u << 20); len *= 2) {
        if (len > tls_len) {
            char *b = realloc(tls_buf, len);
            if (!b)
                break;
            tls_buf = b;
            tls_len = len;
        }
        int e = ghb(q, &tls_he, tls_buf, tls_len, &result, &herr);
        if (e != ERANGE) {
            if (e)
                errno = e;
            break;
        }
    }
    h_errno = result ? 0 : (herr ? herr : NO_RECOVERY);
    return result;
}

struct hostent *green_hook_gethostbyname(const char *name)
{
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_DNS) || !name)
        return green__real.gethostbyname(name);
    struct ghb_query q = { .name = name, .af = -1 };
    return ghb_static(&q);
}

struct hostent *green_hook_gethostbyname2(const char *name, int af)
{
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_DNS) || !name || af < 0)
        return green__real.gethostbyname2(name, af);
    struct ghb_query q = { .name = name, .af = af };
    return ghb_static(&q);
}

struct hostent *green_hook_gethostbyaddr(const void *addr, socklen_t len, int type)
{
    green__real_init();
    if (!green__hook_on(GREEN_HOOK_DNS) || !addr_ok(addr, len))
        return green__real.gethostbyaddr(addr, len, type);
    struct ghb_query q = { .af = type, .addr = addr, .addrlen = len };
    return ghb_static(&q);
}
