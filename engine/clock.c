/* clock.c — the monotonic clock (clock_gettime). */
#include "engine/clock.h"

#include <time.h>

double ssm_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
