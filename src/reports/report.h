/* report.h — the report path shared by answers.c and submit.c. */
#ifndef STATUS_CHECKER_REPORT_H
#define STATUS_CHECKER_REPORT_H

#include "utils/jsonb.h"

extern int16 counter_slot(void);
extern void counters_add(int64 tenant_id, int64 request_id, int old_level, int new_level);
extern void counters_init(void);
extern bool counters_inline_begin(void);
extern void counters_inline_end(void);
extern void answers_check(Jsonb *def, Jsonb *answers, int *level, char **color, char **icon);

#endif
