/* cmr-test-httpd: a tiny HTTP server on 127.0.0.1 for the radio tests
 * (tests/cli/960-radio.bats). It serves one file as an endless stream, the
 * way an Icecast station serves Ogg or MP3: no Content-Length, the file
 * again and again, paced at a byte rate, until the client goes away. To
 * test a client's recovery it can misbehave on chosen connections: drop the
 * connection after some bytes, or stall (stop sending, keep the socket).
 *
 *   cmr-test-httpd --file F --port-file P [--rate B] [--drop-after B]
 *                  [--stall-after B] [--bad N] [--connections N] [--lifetime S]
 *
 * Only ever listens on 127.0.0.1, on a port the kernel picks (written to P
 * once listening). Serves one client at a time. Logs one line per event on
 * stderr. Exits after --connections connections or --lifetime seconds
 * (default 60), whichever comes first, so a test cannot leave it behind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double t_start;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

__attribute__((format(printf, 1, 2)))
static void say(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "cmr-test-httpd: [%.2f s] ", now() - t_start);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-test-httpd --file F --port-file P [OPTION]...\n"
        "Serve F over HTTP on 127.0.0.1 as an endless stream (for tests).\n"
        "  --file F          the file to stream, again and again\n"
        "  --port-file P     write the port to P once listening\n"
        "  --rate B          bytes per second [16000]\n"
        "  --drop-after B    on the bad connections, close after B bytes\n"
        "  --stall-after B   on the bad connections, stop sending after B bytes\n"
        "                    and keep the socket open until the client leaves\n"
        "  --bad N           the first N connections misbehave [1]\n"
        "  --connections N   exit after N connections [100]\n"
        "  --lifetime S      exit after S seconds in any case [60]\n");
    exit(code);
}

static long num(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "cmr-test-httpd: %s takes an integer in [%ld, %ld], got '%s'\n", opt, lo,
                hi, s);
        exit(2);
    }
    return v;
}

/* waits until fd is readable/writable or the deadline; 1 ready, 0 timeout */
static int wait_fd(int fd, short ev, double deadline)
{
    double left = deadline - now();
    if (left <= 0)
        return 0;
    struct pollfd p = {fd, ev, 0};
    int ms = (int)(left * 1000) + 1;
    return poll(&p, 1, ms) > 0;
}

static int read_request(int c, double deadline)
{
    char buf[4096];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        if (!wait_fd(c, POLLIN, deadline))
            return -1;
        ssize_t k = read(c, buf + n, sizeof buf - 1 - n);
        if (k <= 0)
            return -1;
        n += (size_t)k;
        buf[n] = 0;
        if (strstr(buf, "\r\n\r\n"))
            return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"port-file", required_argument, NULL, 'p'},
        {"rate", required_argument, NULL, 'r'},
        {"drop-after", required_argument, NULL, 'd'},
        {"stall-after", required_argument, NULL, 's'},
        {"bad", required_argument, NULL, 'b'},
        {"connections", required_argument, NULL, 'c'},
        {"lifetime", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *file = NULL, *port_file = NULL;
    long rate = 16000, drop_after = -1, stall_after = -1, bad = 1, max_conn = 100, lifetime = 60;
    int o;

    t_start = now();
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'f': file = optarg; break;
        case 'p': port_file = optarg; break;
        case 'r': rate = num("--rate", optarg, 1, 1L << 30); break;
        case 'd': drop_after = num("--drop-after", optarg, 0, 1L << 40); break;
        case 's': stall_after = num("--stall-after", optarg, 0, 1L << 40); break;
        case 'b': bad = num("--bad", optarg, 0, 1000000); break;
        case 'c': max_conn = num("--connections", optarg, 1, 1000000); break;
        case 'l': lifetime = num("--lifetime", optarg, 1, 86400); break;
        case 'h': usage(stdout, 0); break;
        default: usage(stderr, 2);
        }
    }
    if (!file || !port_file || optind != argc)
        usage(stderr, 2);

    /* the whole file in memory */
    FILE *f = fopen(file, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) || st.st_size <= 0) {
        fprintf(stderr, "cmr-test-httpd: cannot read %s\n", file);
        return 1;
    }
    size_t size = (size_t)st.st_size;
    unsigned char *data = malloc(size);
    if (!data || fread(data, 1, size, f) != size) {
        fprintf(stderr, "cmr-test-httpd: cannot read %s\n", file);
        return 1;
    }
    fclose(f);

    signal(SIGPIPE, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t alen = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4) ||
        getsockname(s, (struct sockaddr *)&a, &alen)) {
        fprintf(stderr, "cmr-test-httpd: cannot listen on 127.0.0.1: %s\n", strerror(errno));
        return 1;
    }
    {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *pf = fopen(tmp, "w");
        if (!pf || fprintf(pf, "%d\n", ntohs(a.sin_port)) < 0 || fclose(pf) || rename(tmp, port_file)) {
            fprintf(stderr, "cmr-test-httpd: cannot write %s\n", port_file);
            return 1;
        }
    }
    say("listening on 127.0.0.1:%d, serving %s (%zu bytes) at %ld B/s", ntohs(a.sin_port), file,
        size, rate);

    double deadline = t_start + (double)lifetime;
    for (long conn = 1; conn <= max_conn; conn++) {
        if (!wait_fd(s, POLLIN, deadline))
            break;
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        int is_bad = conn <= bad && (drop_after >= 0 || stall_after >= 0);
        if (read_request(c, deadline)) {
            say("connection %ld: no request", conn);
            close(c);
            continue;
        }
        const char *hdr = "HTTP/1.0 200 OK\r\nContent-Type: application/ogg\r\n"
                          "icy-name: cmr test station\r\nCache-Control: no-cache\r\n\r\n";
        if (write(c, hdr, strlen(hdr)) < 0) {
            close(c);
            continue;
        }
        say("connection %ld%s", conn, is_bad ? " (misbehaving)" : "");
        /* stream: chunks of 1/20 s at the byte rate */
        size_t pos = 0, chunk = (size_t)(rate / 20 > 0 ? rate / 20 : 1);
        long long sent = 0;
        double t0 = now();
        for (;;) {
            if (is_bad && drop_after >= 0 && sent >= drop_after) {
                say("connection %ld: dropping after %lld bytes", conn, sent);
                break;
            }
            if (is_bad && stall_after >= 0 && sent >= stall_after) {
                say("connection %ld: stalling after %lld bytes", conn, sent);
                /* keep the socket until the client closes it (or the lifetime ends) */
                char sink[1024];
                while (wait_fd(c, POLLIN, deadline) && read(c, sink, sizeof sink) > 0)
                    ;
                say("connection %ld: the client left", conn);
                break;
            }
            double due = t0 + (double)sent / (double)rate;
            if (due > now()) {
                if (due > deadline)
                    break;
                struct timespec ts = {(time_t)(due - now()), 0};
                ts.tv_nsec = (long)((due - now() - (double)ts.tv_sec) * 1e9);
                if (ts.tv_nsec < 0)
                    ts.tv_nsec = 0;
                nanosleep(&ts, NULL);
            }
            if (now() >= deadline)
                break;
            size_t k = chunk;
            if (k > size - pos)
                k = size - pos;
            if (is_bad && drop_after >= 0 && sent + (long long)k > drop_after)
                k = (size_t)(drop_after - sent);
            if (is_bad && stall_after >= 0 && sent + (long long)k > stall_after)
                k = (size_t)(stall_after - sent);
            if (k > 0) {
                ssize_t w = write(c, data + pos, k);
                if (w <= 0) {
                    say("connection %ld: the client left after %lld bytes", conn, sent);
                    break;
                }
                sent += w;
                pos = (pos + (size_t)w) % size;
            }
        }
        close(c);
    }
    say("done");
    close(s);
    free(data);
    return 0;
}
