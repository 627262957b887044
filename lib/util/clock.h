/* Wall time for measurements: seconds on the monotonic clock (CLOCK_MONOTONIC;
 * unaffected by changes of the date). Only differences mean anything. */
#ifndef CMR_UTIL_CLOCK_H
#define CMR_UTIL_CLOCK_H

double cmr_now(void);

#endif
