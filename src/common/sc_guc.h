/* sc_guc.h — GUC variables shared across status_checker's domains. */
#ifndef STATUS_CHECKER_SC_GUC_H
#define STATUS_CHECKER_SC_GUC_H

extern int	sc_max_import_bytes;
extern int	sc_max_answers_bytes;
extern int	sc_max_feed_bytes;
extern int	sc_backup_retention_min;

/* status_checker.database: the database every background worker connects to */
extern char *sc_database;

#endif
