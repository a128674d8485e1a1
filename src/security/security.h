/* security.h — tenant context and signatures (src/security/). */
#ifndef STATUS_CHECKER_SECURITY_H
#define STATUS_CHECKER_SECURITY_H

extern void tenancy_init(void);
extern bool tenancy_may_see(int64 tenant_id);

/* one of the extension's queries as the bootstrap superuser, search_path pinned (elevated.c) */
extern int	sc_spi_as_superuser(const char *sql, int nargs, Oid *types, Datum *values,
								bool readonly, long count);

extern char *sc_master_key_file;
extern char *sc_master_key_command;
extern void keys_init(void);
extern void keys_config_changed(void);
extern void keys_load_at_start(void);

#endif
