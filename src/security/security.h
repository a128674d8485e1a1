/* security.h — tenant context and signatures (src/security/). */
#ifndef STATUS_CHECKER_SECURITY_H
#define STATUS_CHECKER_SECURITY_H

extern void tenancy_init(void);
extern bool tenancy_may_see(int64 tenant_id);

extern char *sc_master_key_file;
extern char *sc_master_key_command;
extern void keys_init(void);
extern void keys_config_changed(void);
extern void keys_load_at_start(void);

#endif
