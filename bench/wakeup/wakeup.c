/*
 * What one wake-up costs on this host: a thread that sleeps in poll() for SLEEP_MS, N times,
 * and the CPU the process was charged for it, in microseconds per wake-up, as JSON. Nothing
 * else happens, so it is the floor under every wake-up of a worker that sleeps between
 * events: the timer, the switch into the thread and back out. Bare metal charges a few
 * microseconds; a virtual machine that traps to its hypervisor on these, ten times that.
 *
 *   wakeup [N [SLEEP_MS]]
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static double cpu_us(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 +
           ru.ru_stime.tv_usec;
}

int main(int argc, char **argv) {
    char *end = "";
    long n = argc > 1 ? strtol(argv[1], &end, 10) : 300;
    if (*end || n <= 0 || n > 1000000)
        return 2;
    long sleep_ms = argc > 2 ? strtol(argv[2], &end, 10) : 10;
    if (*end || sleep_ms < 0 || sleep_ms > 10000)
        return 2;
    double c0 = cpu_us();
    for (long i = 0; i < n; i++)
        poll(NULL, 0, (int)sleep_ms);
    printf("{\"wakeups\": %ld, \"sleep_ms\": %ld, \"cpu_us_per_wakeup\": %.2f}\n", n, sleep_ms,
           (cpu_us() - c0) / n);
    return 0;
}
