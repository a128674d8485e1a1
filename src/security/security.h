/* security.h — tenant context and signatures (src/security/). */
#ifndef STATUS_CHECKER_SECURITY_H
#define STATUS_CHECKER_SECURITY_H

extern void tenancy_init(void);

#endif
