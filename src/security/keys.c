/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  Envelope encryption of personal and secret data: AES-256-GCM through
 *	  OpenSSL, with a data key per tenant wrapped by a master key that the
 *	  server reads from a file or a command (GUCs), never from the database.
 *
 * Master keys: status_checker.master_key_file or .master_key_command gives
 * one key per line, 64 hexadecimal digits; the first is the current key,
 * the others are older keys still accepted for unwrapping (during a
 * rotation).  A key is known by its id, the first 8 bytes of its SHA-256.
 * Each backend reads them when it first needs them and again after a
 * configuration reload; they live only in this process's memory.
 *
 * Wrapped keys (data keys in status_checker.data_key, the installation's
 * signing key):  master key id (8) || nonce (12) || tag (16) || key (32),
 * AES-256-GCM under the master key, with additional data naming what the
 * key is for (so that a wrapped key cannot be moved to another tenant).
 *
 * Encrypted values:  "SC" 0x01 || data key version (4, big-endian) ||
 * nonce (12) || tag (16) || ciphertext, AES-256-GCM under the tenant's
 * data key, with additional data "status_checker|<context>|<tenant>": a
 * value cannot be moved to another tenant or another kind of field.  Text
 * values are stored as "sc1:" + base64 of those bytes.
 *
 * Data key version 0 of a tenant is its index key: never used to encrypt,
 * only for blind indexes (HMAC-SHA256) that let a unique constraint see
 * equal addresses without seeing the addresses.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/base64.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "dispatch/dispatch.h"
#include "security/security.h"

#define KEY_BYTES		32
#define NONCE_BYTES		12
#define TAG_BYTES		16
#define MKID_BYTES		8
#define WRAPPED_BYTES	(MKID_BYTES + NONCE_BYTES + TAG_BYTES + KEY_BYTES)
#define VALUE_HEADER	(3 + 4 + NONCE_BYTES + TAG_BYTES)
#define TEXT_PREFIX		"sc1:"
#define MAX_MASTER_KEYS 8

char	   *sc_master_key_file = NULL;
char	   *sc_master_key_command = NULL;

typedef struct MasterKey
{
	uint8		id[MKID_BYTES];
	uint8		key[KEY_BYTES];
} MasterKey;

static MasterKey master_keys[MAX_MASTER_KEYS];
static int	n_master_keys = 0;
static bool master_keys_stale = true;

typedef struct DataKeyId
{
	int64		tenant_id;
	int32		version;
} DataKeyId;

typedef struct DataKeyEntry
{
	DataKeyId	id;				/* hash key */
	uint8		key[KEY_BYTES];
} DataKeyEntry;

typedef struct CurrentVersionEntry
{
	int64		tenant_id;		/* hash key */
	int32		version;
	CommandId	cid;			/* valid for this command only */
} CurrentVersionEntry;

static HTAB *data_keys = NULL;	/* unwrapped data keys, for the life of the backend */
static HTAB *current_versions = NULL;	/* per transaction */

/*
 * One tenant's link key, decrypted, for the transaction that read it (an
 * issue_tokens of 20,000 targets derives 20,000 tokens with it); zeroed at
 * the end of the transaction.
 */
#define MAX_LINK_KEY_BYTES 64
static int64 link_key_tenant = 0;
static LocalTransactionId link_key_lxid = InvalidLocalTransactionId;
static uint8 link_key_bytes[MAX_LINK_KEY_BYTES];
static int	link_key_len = 0;

/* ---------------------------------------------------------------- helpers */

static void
forget_data_keys(void)
{
	HASH_SEQ_STATUS seq;
	DataKeyEntry *e;

	if (data_keys == NULL)
		return;
	hash_seq_init(&seq, data_keys);
	while ((e = hash_seq_search(&seq)) != NULL)
		explicit_bzero(e->key, KEY_BYTES);
	hash_destroy(data_keys);
	data_keys = NULL;
}

void
keys_config_changed(void)
{
	master_keys_stale = true;
}

static void
keys_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		if (current_versions != NULL)
			hash_destroy(current_versions);
		current_versions = NULL;
		explicit_bzero(link_key_bytes, sizeof(link_key_bytes));
		link_key_len = 0;
		link_key_lxid = InvalidLocalTransactionId;
	}
}

void
keys_init(void)
{
	RegisterXactCallback(keys_xact_callback, NULL);
}

static void
key_id_of(const uint8 *key, uint8 *id)
{
	uint8		digest[SHA256_DIGEST_LENGTH];

	SHA256(key, KEY_BYTES, digest);
	memcpy(id, digest, MKID_BYTES);
}

static char *
hex_of(const uint8 *data, int len)
{
	char	   *out = palloc(len * 2 + 1);

	hex_encode((const char *) data, len, out);
	out[len * 2] = '\0';
	return out;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Read the master keys from the configured file or command. */
static void
load_master_keys(void)
{
	bool		from_command = sc_master_key_command != NULL && sc_master_key_command[0] != '\0';
	bool		from_file = sc_master_key_file != NULL && sc_master_key_file[0] != '\0';
	const char *source = from_command ? "status_checker.master_key_command" : "status_checker.master_key_file";
	FILE	   *fp;
	char		line[1024];
	int			lineno = 0;
	int			n = 0;
	MasterKey	keys[MAX_MASTER_KEYS];

	if (!master_keys_stale)
		return;
	if (!from_command && !from_file)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no master key is configured"),
				 errdetail("Personal and secret data are encrypted with keys wrapped by a master key kept outside the database."),
				 errhint("Set status_checker.master_key_file (a file readable only by the server, one key of 64 hexadecimal digits per line) "
						 "or status_checker.master_key_command in postgresql.conf, and reload.")));
	if (from_command)
		fp = OpenPipeStream(sc_master_key_command, "r");
	else
	{
		struct stat st;

		if (stat(sc_master_key_file, &st) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read the master key file \"%s\": %m", sc_master_key_file)));
		if (st.st_mode & (S_IRWXG | S_IRWXO))
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("the master key file \"%s\" is accessible to other users", sc_master_key_file),
					 errhint("chmod 600 the file, owned by the database server's user.")));
		fp = AllocateFile(sc_master_key_file, "r");
	}
	if (fp == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read the master key from %s: %m", source)));

	while (fgets(line, sizeof(line), fp) != NULL)
	{
		char	   *p = line;
		int			len;
		int			i;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		len = strcspn(p, " \t\r\n");
		if (len == 0 || p[0] == '#')
			continue;
		if (len != KEY_BYTES * 2 || n >= MAX_MASTER_KEYS)
		{
			explicit_bzero(line, sizeof(line));
			explicit_bzero(keys, sizeof(keys));
			if (from_command)
				ClosePipeStream(fp);
			else
				FreeFile(fp);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("line %d of %s is not a master key", lineno, source),
					 errdetail("A master key is 64 hexadecimal digits (256 bits); at most %d keys, the current one first.",
							   MAX_MASTER_KEYS)));
		}
		for (i = 0; i < KEY_BYTES; i++)
		{
			int			hi = hex_value(p[2 * i]);
			int			lo = hex_value(p[2 * i + 1]);

			if (hi < 0 || lo < 0)
				break;
			keys[n].key[i] = (uint8) (hi << 4 | lo);
		}
		explicit_bzero(line, sizeof(line));
		if (i < KEY_BYTES)
		{
			explicit_bzero(keys, sizeof(keys));
			if (from_command)
				ClosePipeStream(fp);
			else
				FreeFile(fp);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("line %d of %s is not a master key", lineno, source),
					 errdetail("A master key is 64 hexadecimal digits.")));
		}
		key_id_of(keys[n].key, keys[n].id);
		n++;
	}
	if (from_command)
	{
		int			rc = ClosePipeStream(fp);

		if (rc != 0)
		{
			explicit_bzero(keys, sizeof(keys));
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("status_checker.master_key_command failed (exit status %d)", rc)));
		}
	}
	else
		FreeFile(fp);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("%s gave no master key", source)));

	explicit_bzero(master_keys, sizeof(master_keys));
	memcpy(master_keys, keys, sizeof(MasterKey) * n);
	explicit_bzero(keys, sizeof(keys));
	n_master_keys = n;
	master_keys_stale = false;
	forget_data_keys();
}

void
keys_load_at_start(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	if ((sc_master_key_file == NULL || sc_master_key_file[0] == '\0') &&
		(sc_master_key_command == NULL || sc_master_key_command[0] == '\0'))
		return;
	PG_TRY();
	{
		load_master_keys();
		ereport(LOG,
				(errmsg("status_checker: master key %s loaded (%d key%s)",
						hex_of(master_keys[0].id, MKID_BYTES), n_master_keys, n_master_keys > 1 ? "s" : "")));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(WARNING,
				(errmsg("status_checker: could not read the master key at start: %s", edata->message),
				 edata->hint ? errhint("%s", edata->hint) : 0));
		FreeErrorData(edata);
		master_keys_stale = true;
	}
	PG_END_TRY();
}

static const MasterKey *
master_key_by_id(const uint8 *id)
{
	int			i;

	load_master_keys();
	for (i = 0; i < n_master_keys; i++)
		if (memcmp(master_keys[i].id, id, MKID_BYTES) == 0)
			return &master_keys[i];
	return NULL;
}

/* AES-256-GCM; false if the tag does not verify (decryption) */
static bool
gcm(bool encrypt, const uint8 *key, const uint8 *nonce, const uint8 *aad, int aadlen,
	const uint8 *in, int len, uint8 *out, uint8 *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int			outl = 0;
	int			finl = 0;
	bool		ok;

	ok = ctx != NULL &&
		EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt ? 1 : 0) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_BYTES, NULL) == 1 &&
		EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, encrypt ? 1 : 0) == 1 &&
		EVP_CipherUpdate(ctx, NULL, &outl, aad, aadlen) == 1 &&
		(len == 0 || EVP_CipherUpdate(ctx, out, &outl, in, len) == 1) &&
		(encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag) == 1) &&
		EVP_CipherFinal_ex(ctx, out + (len == 0 ? 0 : outl), &finl) == 1 &&
		(!encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, tag) == 1);
	EVP_CIPHER_CTX_free(ctx);
	if (!ok && encrypt)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not encrypt with AES-256-GCM")));
	return ok;
}

static void
random_bytes(uint8 *buf, int len)
{
	if (!pg_strong_random(buf, len))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
}

/* wrap key[32] under the current master key into out[WRAPPED_BYTES] */
static void
wrap_key(const uint8 *key, const char *aad, uint8 *out)
{
	load_master_keys();
	memcpy(out, master_keys[0].id, MKID_BYTES);
	random_bytes(out + MKID_BYTES, NONCE_BYTES);
	gcm(true, master_keys[0].key, out + MKID_BYTES, (const uint8 *) aad, strlen(aad),
		key, KEY_BYTES, out + MKID_BYTES + NONCE_BYTES + TAG_BYTES, out + MKID_BYTES + NONCE_BYTES);
}

/* unwrap a wrapped key into key[32]; what names it in errors */
static void
unwrap_key(const uint8 *wrapped, int len, const char *aad, const char *what, uint8 *key)
{
	const MasterKey *mk;
	uint8		tag[TAG_BYTES];

	if (len != WRAPPED_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the wrapped %s is damaged (%d bytes)", what, len)));
	mk = master_key_by_id(wrapped);
	if (mk == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the %s is wrapped by master key %s, which is not configured", what, hex_of(wrapped, MKID_BYTES)),
				 errdetail("The configured master key%s: %s.", n_master_keys > 1 ? "s are" : " is",
						   hex_of(master_keys[0].id, MKID_BYTES)),
				 errhint("Configure that master key (as a second line during a rotation, then run rotate_master_key()). "
						 "Nothing was changed.")));
	memcpy(tag, wrapped + MKID_BYTES + NONCE_BYTES, TAG_BYTES);
	if (!gcm(false, mk->key, wrapped + MKID_BYTES, (const uint8 *) aad, strlen(aad),
			 wrapped + MKID_BYTES + NONCE_BYTES + TAG_BYTES, KEY_BYTES, key, tag))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the %s does not unwrap with master key %s", what, hex_of(mk->id, MKID_BYTES)),
				 errdetail("The wrapped key was altered, or belongs to another tenant or installation.")));
}

/*
 * run a query as the bootstrap superuser (the data key table is not for the
 * caller), its search_path pinned (elevated.c)
 */
static int
spi_as_owner(const char *sql, int nargs, Oid *types, Datum *values, bool readonly)
{
	return sc_spi_as_superuser(sql, nargs, types, values, readonly, 0);
}

static char *
data_key_aad(int64 tenant_id, int32 version)
{
	return psprintf("status_checker data key|%lld|%d", (long long) tenant_id, version);
}

/* the tenant's data key of a version; ERROR if there is none */
static const uint8 *
data_key(int64 tenant_id, int32 version)
{
	DataKeyId	id;
	DataKeyEntry *e;
	bool		found;
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	bool		isnull;
	bytea	   *wrapped;
	uint8		key[KEY_BYTES];

	load_master_keys();
	if (data_keys == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(DataKeyId);
		ctl.entrysize = sizeof(DataKeyEntry);
		data_keys = hash_create("status_checker data keys", 64, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	memset(&id, 0, sizeof(id));
	id.tenant_id = tenant_id;
	id.version = version;
	e = hash_search(data_keys, &id, HASH_FIND, NULL);
	if (e != NULL)
		return e->key;

	values[0] = Int64GetDatum(tenant_id);
	values[1] = Int32GetDatum(version);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* not read-only: a key made earlier in this very command must be seen */
	if (spi_as_owner("SELECT wrapped FROM status_checker.data_key "
					 "WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.=) $2",
					 2, types, values, false) != SPI_OK_SELECT)
		elog(ERROR, "could not read a data key");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("data key %d of tenant %lld does not exist", version, (long long) tenant_id),
				 errdetail("It was destroyed (tenant deleted, or rotated out) and what it encrypted cannot be read.")));
	wrapped = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	unwrap_key((uint8 *) VARDATA_ANY(wrapped), VARSIZE_ANY_EXHDR(wrapped), data_key_aad(tenant_id, version),
			   psprintf("data key %d of tenant %lld", version, (long long) tenant_id), key);
	SPI_finish();
	e = hash_search(data_keys, &id, HASH_ENTER, &found);
	memcpy(e->key, key, KEY_BYTES);
	explicit_bzero(key, KEY_BYTES);
	return e->key;
}

/* make a data key of a version (ON CONFLICT: someone else made it) */
static void
create_data_key(int64 tenant_id, int32 version)
{
	uint8		key[KEY_BYTES];
	uint8		wrapped[WRAPPED_BYTES];
	bytea	   *w = palloc(VARHDRSZ + WRAPPED_BYTES);
	Oid			types[3] = {INT8OID, INT4OID, BYTEAOID};
	Datum		values[3];

	random_bytes(key, KEY_BYTES);
	wrap_key(key, data_key_aad(tenant_id, version), wrapped);
	explicit_bzero(key, KEY_BYTES);
	SET_VARSIZE(w, VARHDRSZ + WRAPPED_BYTES);
	memcpy(VARDATA(w), wrapped, WRAPPED_BYTES);
	values[0] = Int64GetDatum(tenant_id);
	values[1] = Int32GetDatum(version);
	values[2] = PointerGetDatum(w);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (spi_as_owner("INSERT INTO status_checker.data_key (tenant_id, version, wrapped) VALUES ($1, $2, $3) "
					 "ON CONFLICT DO NOTHING", 3, types, values, false) < 0)
		elog(ERROR, "could not store a data key");
	SPI_finish();
}

/* the version new values of a tenant are encrypted with (made on first use) */
static int32
current_version(int64 tenant_id)
{
	CurrentVersionEntry *e;
	bool		found;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;
	Datum		v;
	int32		version;

	if (current_versions == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(CurrentVersionEntry);
		ctl.hcxt = TopTransactionContext;
		current_versions = hash_create("status_checker data key versions", 16, &ctl,
									   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	/*
	 * One lookup per statement (an import encrypts thousands of values in
	 * one): a rotation committed meanwhile is seen by the next statement.
	 */
	e = hash_search(current_versions, &tenant_id, HASH_FIND, NULL);
	if (e != NULL && e->cid == GetCurrentCommandId(false))
		return e->version;

	values[0] = Int64GetDatum(tenant_id);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (spi_as_owner("SELECT pg_catalog.max(version) FROM status_checker.data_key "
					 "WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.>) 0 "
					 "AND retired_at IS NULL", 1, types, values, true) != SPI_OK_SELECT)
		elog(ERROR, "could not read the data key version");
	v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	version = isnull ? 0 : DatumGetInt32(v);
	SPI_finish();
	if (version == 0)
	{
		/* the tenant's first encrypted value: its index key and data key 1 */
		create_data_key(tenant_id, 0);
		create_data_key(tenant_id, 1);
		version = 1;
	}
	e = hash_search(current_versions, &tenant_id, HASH_ENTER, &found);
	e->version = version;
	e->cid = GetCurrentCommandId(false);
	return version;
}

static void
check_tenant(int64 tenant_id)
{
	if (!tenancy_may_see(tenant_id))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for the data of tenant %lld", (long long) tenant_id)));
}

static char *
value_aad(int64 tenant_id, const char *context)
{
	return psprintf("status_checker|%s|%lld", context, (long long) tenant_id);
}

/* encrypt into a freshly palloc'd blob of len + VALUE_HEADER bytes */
static uint8 *
encrypt_value(int64 tenant_id, const char *context, const uint8 *plain, int len)
{
	int32		version = current_version(tenant_id);
	const uint8 *key = data_key(tenant_id, version);
	uint8	   *out = palloc(VALUE_HEADER + len);
	char	   *aad = value_aad(tenant_id, context);

	out[0] = 'S';
	out[1] = 'C';
	out[2] = 1;
	out[3] = (uint8) (version >> 24);
	out[4] = (uint8) (version >> 16);
	out[5] = (uint8) (version >> 8);
	out[6] = (uint8) version;
	random_bytes(out + 7, NONCE_BYTES);
	gcm(true, key, out + 7, (uint8 *) aad, strlen(aad), plain, len,
		out + VALUE_HEADER, out + 7 + NONCE_BYTES);
	return out;
}

static int32
blob_version(const uint8 *blob, int len)
{
	if (len < VALUE_HEADER || blob[0] != 'S' || blob[1] != 'C' || blob[2] != 1)
		return -1;
	return (int32) ((uint32) blob[3] << 24 | (uint32) blob[4] << 16 | (uint32) blob[5] << 8 | blob[6]);
}

/* decrypt a blob into a palloc'd buffer of *outlen bytes (plus a NUL) */
static uint8 *
decrypt_value(int64 tenant_id, const char *context, const uint8 *blob, int len, int *outlen)
{
	int32		version = blob_version(blob, len);
	const uint8 *key;
	uint8	   *out;
	uint8		tag[TAG_BYTES];
	char	   *aad;

	if (version <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a %s of tenant %lld is not an encrypted value", context, (long long) tenant_id)));
	key = data_key(tenant_id, version);
	out = palloc(len - VALUE_HEADER + 1);
	aad = value_aad(tenant_id, context);
	memcpy(tag, blob + 7 + NONCE_BYTES, TAG_BYTES);
	if (!gcm(false, key, blob + 7, (uint8 *) aad, strlen(aad), blob + VALUE_HEADER, len - VALUE_HEADER, out, tag))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a %s of tenant %lld does not decrypt", context, (long long) tenant_id),
				 errdetail("The value was altered, or moved from another tenant or field.")));
	out[len - VALUE_HEADER] = '\0';
	*outlen = len - VALUE_HEADER;
	return out;
}

/* ---------------------------------------------------------------- SQL functions */

/* _encrypt(tenant_id, context, value text) -> text "sc1:<base64>" */
/* a text value encrypted: "sc1:" + base64 */
static text *
encrypt_text(int64 tenant_id, const char *context, const char *value, int len)
{
	uint8	   *blob;
	int			blen = VALUE_HEADER + len;
	int			elen = pg_b64_enc_len(blen);
	text	   *result = palloc(VARHDRSZ + strlen(TEXT_PREFIX) + elen);
	int			n;

	check_tenant(tenant_id);
	blob = encrypt_value(tenant_id, context, (const uint8 *) value, len);
	memcpy(VARDATA(result), TEXT_PREFIX, strlen(TEXT_PREFIX));
	n = pg_b64_encode((char *) blob, blen, VARDATA(result) + strlen(TEXT_PREFIX), elen);
	if (n < 0)
		elog(ERROR, "could not encode an encrypted value");
	SET_VARSIZE(result, VARHDRSZ + strlen(TEXT_PREFIX) + n);
	return result;
}

PG_FUNCTION_INFO_V1(sc_encrypt);
Datum
sc_encrypt(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(2);

	PG_RETURN_TEXT_P(encrypt_text(PG_GETARG_INT64(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
								  VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value)));
}

static uint8 *
text_blob(text *value, int *blen)
{
	char	   *s = VARDATA_ANY(value);
	int			len = VARSIZE_ANY_EXHDR(value);
	int			plen = strlen(TEXT_PREFIX);
	uint8	   *blob;

	if (len < plen || memcmp(s, TEXT_PREFIX, plen) != 0)
	{
		*blen = 0;
		return NULL;
	}
	blob = palloc(pg_b64_dec_len(len - plen) + 1);
	*blen = pg_b64_decode(s + plen, len - plen, (char *) blob, pg_b64_dec_len(len - plen) + 1);
	return *blen < 0 ? NULL : blob;
}

/* _decrypt(tenant_id, context, value text) -> text */
PG_FUNCTION_INFO_V1(sc_decrypt);
Datum
sc_decrypt(PG_FUNCTION_ARGS)
{
	int64		tenant_id = PG_GETARG_INT64(0);
	char	   *context = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			blen;
	uint8	   *blob = text_blob(PG_GETARG_TEXT_PP(2), &blen);
	uint8	   *plain;
	int			plen;

	check_tenant(tenant_id);
	if (blob == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a %s of tenant %lld is not an encrypted value", context, (long long) tenant_id)));
	plain = decrypt_value(tenant_id, context, blob, blen, &plen);
	PG_RETURN_TEXT_P(cstring_to_text_with_len((char *) plain, plen));
}

/* _encrypt_bytes(tenant_id, context, value bytea) -> bytea */
PG_FUNCTION_INFO_V1(sc_encrypt_bytes);
Datum
sc_encrypt_bytes(PG_FUNCTION_ARGS)
{
	int64		tenant_id = PG_GETARG_INT64(0);
	char	   *context = text_to_cstring(PG_GETARG_TEXT_PP(1));
	bytea	   *value = PG_GETARG_BYTEA_PP(2);
	int			len = VARSIZE_ANY_EXHDR(value);
	uint8	   *blob;
	bytea	   *result = palloc(VARHDRSZ + VALUE_HEADER + len);

	check_tenant(tenant_id);
	blob = encrypt_value(tenant_id, context, (uint8 *) VARDATA_ANY(value), len);
	SET_VARSIZE(result, VARHDRSZ + VALUE_HEADER + len);
	memcpy(VARDATA(result), blob, VALUE_HEADER + len);
	PG_RETURN_BYTEA_P(result);
}

/* _decrypt_bytes(tenant_id, context, value bytea) -> bytea */
PG_FUNCTION_INFO_V1(sc_decrypt_bytes);
Datum
sc_decrypt_bytes(PG_FUNCTION_ARGS)
{
	int64		tenant_id = PG_GETARG_INT64(0);
	char	   *context = text_to_cstring(PG_GETARG_TEXT_PP(1));
	bytea	   *value = PG_GETARG_BYTEA_PP(2);
	uint8	   *plain;
	int			plen;
	bytea	   *result;

	check_tenant(tenant_id);
	plain = decrypt_value(tenant_id, context, (uint8 *) VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value), &plen);
	result = palloc(VARHDRSZ + plen);
	SET_VARSIZE(result, VARHDRSZ + plen);
	memcpy(VARDATA(result), plain, plen);
	explicit_bzero(plain, plen);
	PG_RETURN_BYTEA_P(result);
}

/*
 * _key_version(value text | bytea) -> integer: the data key version of an
 * encrypted value (text "sc1:…" or raw bytes), NULL if it is not one
 */
PG_FUNCTION_INFO_V1(sc_key_version);
Datum
sc_key_version(PG_FUNCTION_ARGS)
{
	Oid			type = get_fn_expr_argtype(fcinfo->flinfo, 0);
	int32		version;

	if (type == BYTEAOID)
	{
		bytea	   *b = PG_GETARG_BYTEA_PP(0);

		version = blob_version((uint8 *) VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
	}
	else
	{
		int			blen;
		uint8	   *blob = text_blob(PG_GETARG_TEXT_PP(0), &blen);

		version = blob == NULL ? -1 : blob_version(blob, blen);
	}
	if (version <= 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32(version);
}

/*
 * _blind_index(tenant_id, context, value text) -> bytea: HMAC-SHA256 under
 * the tenant's index key (data key version 0) — equal values give equal
 * indexes, and nothing else can be learnt from them
 */
static bytea *
blind_index(int64 tenant_id, const char *context, int clen, const char *value, int len)
{
	const uint8 *key;
	uint8		mac[32];
	StringInfoData buf;
	bytea	   *result;

	check_tenant(tenant_id);
	(void) current_version(tenant_id);	/* makes the index key with the first data key */
	key = data_key(tenant_id, 0);
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, context, clen);
	appendStringInfoChar(&buf, '\0');
	appendBinaryStringInfo(&buf, value, len);
	sc_hmac_sha256(key, KEY_BYTES, buf.data, buf.len, mac);
	result = palloc(VARHDRSZ + sizeof(mac));
	SET_VARSIZE(result, VARHDRSZ + sizeof(mac));
	memcpy(VARDATA(result), mac, sizeof(mac));
	return result;
}

PG_FUNCTION_INFO_V1(sc_blind_index);
Datum
sc_blind_index(PG_FUNCTION_ARGS)
{
	text	   *context = PG_GETARG_TEXT_PP(1);
	text	   *value = PG_GETARG_TEXT_PP(2);

	PG_RETURN_BYTEA_P(blind_index(PG_GETARG_INT64(0), VARDATA_ANY(context), VARSIZE_ANY_EXHDR(context),
								  VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value)));
}

static bool
is_encrypted_text(text *t)
{
	return VARSIZE_ANY_EXHDR(t) >= (int) strlen(TEXT_PREFIX) &&
		memcmp(VARDATA_ANY(t), TEXT_PREFIX, strlen(TEXT_PREFIX)) == 0;
}

/*
 * _encrypt_contact(): BEFORE INSERT OR UPDATE trigger of site_contact —
 * the address and name encrypted, the address's blind index set (mail
 * addresses lower-cased first).  In C: an import encrypts one contact per
 * site, and a PL/pgSQL trigger cost a third of the import's time.
 */
PG_FUNCTION_INFO_V1(sc_encrypt_contact);
Datum
sc_encrypt_contact(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	tuple;
	int			att_tenant,
				att_channel,
				att_address,
				att_name,
				att_key;
	Datum		values[2];
	bool		isnull;
	int			cols[3];
	Datum		newvals[3];
	bool		newnulls[3] = {false, false, false};
	int			n = 0;
	int64		tenant_id;
	text	   *address;
	text	   *name;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "_encrypt_contact must be a BEFORE ROW trigger");
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	desc = trigdata->tg_relation->rd_att;
	att_tenant = SPI_fnumber(desc, "tenant_id");
	att_channel = SPI_fnumber(desc, "channel");
	att_address = SPI_fnumber(desc, "address");
	att_name = SPI_fnumber(desc, "name");
	att_key = SPI_fnumber(desc, "address_key");
	if (att_tenant <= 0 || att_channel <= 0 || att_address <= 0 || att_name <= 0 || att_key <= 0)
		elog(ERROR, "_encrypt_contact: site_contact lacks a column it needs");

	tenant_id = DatumGetInt64(heap_getattr(tuple, att_tenant, desc, &isnull));
	values[0] = heap_getattr(tuple, att_address, desc, &isnull);
	address = isnull ? NULL : DatumGetTextPP(values[0]);
	values[1] = heap_getattr(tuple, att_name, desc, &isnull);
	name = isnull ? NULL : DatumGetTextPP(values[1]);

	if (address != NULL && !is_encrypted_text(address))
	{
		char	   *channel = TextDatumGetCString(heap_getattr(tuple, att_channel, desc, &isnull));
		text	   *indexed = address;
		char	   *context = psprintf("contact:%s", channel);

		if (strcmp(channel, "email") == 0)
			indexed = DatumGetTextPP(DirectFunctionCall1Coll(lower, DEFAULT_COLLATION_OID,
															 PointerGetDatum(address)));
		cols[n] = att_key;
		newvals[n++] = PointerGetDatum(blind_index(tenant_id, context, strlen(context),
												   VARDATA_ANY(indexed), VARSIZE_ANY_EXHDR(indexed)));
		cols[n] = att_address;
		newvals[n++] = PointerGetDatum(encrypt_text(tenant_id, "recipient",
													VARDATA_ANY(address), VARSIZE_ANY_EXHDR(address)));
	}
	if (name != NULL && !is_encrypted_text(name))
	{
		cols[n] = att_name;
		newvals[n++] = PointerGetDatum(encrypt_text(tenant_id, "contact_name",
													VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name)));
	}
	if (n == 0)
		return PointerGetDatum(tuple);
	return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, n, cols, newvals, newnulls));
}

/* _new_data_key(tenant_id) -> integer: make the next version the current one */
PG_FUNCTION_INFO_V1(sc_new_data_key);
Datum
sc_new_data_key(PG_FUNCTION_ARGS)
{
	int64		tenant_id = PG_GETARG_INT64(0);
	int32		version = current_version(tenant_id) + 1;

	create_data_key(tenant_id, version);
	(void) data_key(tenant_id, version);	/* proves it unwraps */
	if (current_versions != NULL)
		hash_search(current_versions, &tenant_id, HASH_REMOVE, NULL);
	PG_RETURN_INT32(version);
}

/* key[32] wrapped under the current master key, as a bytea */
static bytea *
wrapped_bytea(const uint8 *key, const char *aad)
{
	bytea	   *result = palloc(VARHDRSZ + WRAPPED_BYTES);

	SET_VARSIZE(result, VARHDRSZ + WRAPPED_BYTES);
	wrap_key(key, aad, (uint8 *) VARDATA(result));
	return result;
}

/*
 * _rewrap(wrapped bytea, aad text) -> bytea: unwrap with whichever
 * configured master key wrapped it, wrap with the current one
 */
PG_FUNCTION_INFO_V1(sc_rewrap);
Datum
sc_rewrap(PG_FUNCTION_ARGS)
{
	bytea	   *wrapped = PG_GETARG_BYTEA_PP(0);
	char	   *aad = text_to_cstring(PG_GETARG_TEXT_PP(1));
	uint8		key[KEY_BYTES];
	bytea	   *result;

	unwrap_key((uint8 *) VARDATA_ANY(wrapped), VARSIZE_ANY_EXHDR(wrapped), aad, "key", key);
	result = wrapped_bytea(key, aad);
	explicit_bzero(key, KEY_BYTES);
	PG_RETURN_BYTEA_P(result);
}

/* _master_wrap(key bytea, aad text) -> bytea; _master_unwrap(wrapped, aad) -> bytea */
PG_FUNCTION_INFO_V1(sc_master_wrap);
Datum
sc_master_wrap(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	char	   *aad = text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (VARSIZE_ANY_EXHDR(key) != KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a key to wrap has %d bytes", KEY_BYTES)));
	PG_RETURN_BYTEA_P(wrapped_bytea((uint8 *) VARDATA_ANY(key), aad));
}

PG_FUNCTION_INFO_V1(sc_master_unwrap);
Datum
sc_master_unwrap(PG_FUNCTION_ARGS)
{
	bytea	   *wrapped = PG_GETARG_BYTEA_PP(0);
	char	   *aad = text_to_cstring(PG_GETARG_TEXT_PP(1));
	bytea	   *result = palloc(VARHDRSZ + KEY_BYTES);

	SET_VARSIZE(result, VARHDRSZ + KEY_BYTES);
	unwrap_key((uint8 *) VARDATA_ANY(wrapped), VARSIZE_ANY_EXHDR(wrapped), aad, "signing key",
			   (uint8 *) VARDATA(result));
	PG_RETURN_BYTEA_P(result);
}

/* _wrapped_by(wrapped bytea) -> text: the id of the master key that wrapped it */
PG_FUNCTION_INFO_V1(sc_wrapped_by);
Datum
sc_wrapped_by(PG_FUNCTION_ARGS)
{
	bytea	   *wrapped = PG_GETARG_BYTEA_PP(0);

	if (VARSIZE_ANY_EXHDR(wrapped) < MKID_BYTES)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(hex_of((uint8 *) VARDATA_ANY(wrapped), MKID_BYTES)));
}

/* master_key_id() -> text: the id of the current master key (never the key) */
PG_FUNCTION_INFO_V1(sc_master_key_id);
Datum
sc_master_key_id(PG_FUNCTION_ARGS)
{
	load_master_keys();
	PG_RETURN_TEXT_P(cstring_to_text(hex_of(master_keys[0].id, MKID_BYTES)));
}

/* _forget_keys(): drop the unwrapped data keys this backend holds (tests, rotation) */
PG_FUNCTION_INFO_V1(sc_forget_keys);
Datum
sc_forget_keys(PG_FUNCTION_ARGS)
{
	forget_data_keys();
	master_keys_stale = true;
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------- link keys */

/*
 * A tenant's link key, decrypted, into link_key_bytes (cached for the
 * transaction); false when the tenant has none.  With `create`, a missing
 * key is made (status_checker._link_key, which also checks the session's
 * tenant).  Without it, no tenant check at all: the caller proves what it
 * needs otherwise (_first_link_valid: the link's MAC).
 */
static bool
link_key_read(int64 tenant_id, bool create)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;
	Datum		d;
	bytea	   *key;
	uint8	   *plain = NULL;
	int			plen = 0;
	bool		found = false;

	if (link_key_lxid == MyProc->lxid && link_key_tenant == tenant_id && link_key_len > 0)
		return true;
	values[0] = Int64GetDatum(tenant_id);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (spi_as_owner(create ? "SELECT status_checker._link_key($1)"
					 : "SELECT key FROM status_checker.link_key WHERE tenant_id OPERATOR(pg_catalog.=) $1",
					 1, types, values, !create) != SPI_OK_SELECT)
		elog(ERROR, "could not read a link key");
	if (SPI_processed == 1)
	{
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
		{
			key = DatumGetByteaPP(d);
			if (create)
			{
				plain = (uint8 *) VARDATA_ANY(key);
				plen = VARSIZE_ANY_EXHDR(key);
			}
			else
				plain = decrypt_value(tenant_id, "link_key", (uint8 *) VARDATA_ANY(key),
									  VARSIZE_ANY_EXHDR(key), &plen);
			found = true;
		}
	}
	if (found && (plen < 32 || plen > MAX_LINK_KEY_BYTES))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the link key of tenant %lld has %d bytes", (long long) tenant_id, plen),
				 errdetail("A link key has 32 to %d bytes.", MAX_LINK_KEY_BYTES)));
	if (found)
	{
		memcpy(link_key_bytes, plain, plen);
		link_key_len = plen;
		link_key_tenant = tenant_id;
		link_key_lxid = MyProc->lxid;
		explicit_bzero(plain, plen);
	}
	SPI_finish();
	return found;
}

/*
 * _target_token(tenant_id, request_id, site_id, generation) -> text
 *
 * The personal token of a request target at a generation, for a session
 * that acts for the tenant.  The link key never leaves this file: the API
 * functions (issue_token, issue_tokens) get tokens, not the key.
 */
PG_FUNCTION_INFO_V1(sc_target_token);
Datum
sc_target_token(PG_FUNCTION_ARGS)
{
	int64		tenant_id = PG_GETARG_INT64(0);

	check_tenant(tenant_id);
	if (!link_key_read(tenant_id, true))
		elog(ERROR, "tenant %lld has no link key", (long long) tenant_id);
	PG_RETURN_TEXT_P(sc_link_token_text(link_key_bytes, link_key_len, tenant_id, PG_GETARG_INT64(1),
										PG_GETARG_INT64(2), PG_GETARG_INT32(3)));
}

/*
 * _first_link_valid(tenant_id, request_id, site_id, token text) -> boolean
 *
 * Whether the token (a first link's 43 characters) is the target's of
 * generation 1.  The link is the credential, so the session's tenant is
 * not asked (a gateway has none): this is what lets a reporter page served
 * by any gateway login open a first link.  A tenant without a link key is
 * checked against a key of zeros, so that the answer takes as long and
 * says as little.  Compared in constant time.
 */
PG_FUNCTION_INFO_V1(sc_first_link_valid);
Datum
sc_first_link_valid(PG_FUNCTION_ARGS)
{
	int64		tenant_id = PG_GETARG_INT64(0);
	text	   *token = PG_GETARG_TEXT_PP(3);
	static const uint8 no_key[32] = {0};
	bool		have = link_key_read(tenant_id, false);
	bool		same;

	same = sc_link_token_equals(have ? link_key_bytes : no_key, have ? link_key_len : (int) sizeof(no_key),
								tenant_id, PG_GETARG_INT64(1), PG_GETARG_INT64(2), 1,
								VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token));
	PG_RETURN_BOOL(have && same);
}
