/* report.h — the report path shared by answers.c and submit.c. */
#ifndef STATUS_CHECKER_REPORT_H
#define STATUS_CHECKER_REPORT_H

#include "utils/jsonb.h"

extern int16 counter_slot(void);
extern void answers_check(Jsonb *def, Jsonb *answers, int *level, char **color, char **icon);

#endif
