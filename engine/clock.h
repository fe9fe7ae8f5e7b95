/* clock.h — the one monotonic clock every timing in ssmlab reads. */
#ifndef SSM_CLOCK_H
#define SSM_CLOCK_H

/* Seconds on CLOCK_MONOTONIC (an arbitrary origin; only differences mean anything). */
double ssm_now_s(void);

#endif
