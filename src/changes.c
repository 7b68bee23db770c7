/*-------------------------------------------------------------------------
 *
 * changes.c
 *		Role changes, ALTER SYSTEM and privileges into incident_change.
 *
 * The event triggers of extension/82_health.sql record DDL, drops and
 * privileges on objects, but event triggers never fire for what is not
 * of one database: CREATE, ALTER and DROP ROLE, GRANT of a role, REASSIGN
 * OWNED and ALTER SYSTEM. A ProcessUtility hook sees those, after they
 * succeed, and records them through incident__record_change() when
 * pg_incident is installed in the current database. The hook is in place
 * in every backend that has loaded the library, which is every backend when
 * it is in shared_preload_libraries (docs/diagnostics.md says so); a change
 * made from a database without pg_incident is not seen.
 *
 * What is kept of a statement is rebuilt from its parse tree, never its
 * text: a client's text can hide a password anywhere a lexer allows (a
 * literal, a comment, a quoted identifier, a string of several statements),
 * and no pattern redacts all of those. The parse tree names the roles,
 * options and privileges, and carries a password only in the one place this
 * file never reads. A setting's value is kept only for built-in settings
 * every role may SHOW; a custom or superuser-only one keeps its name alone.
 * incident__grant_text() does the same for the GRANT, REVOKE and ALTER
 * DEFAULT PRIVILEGES the event trigger collects, from the collected command.
 *
 * Recording never stands in the way of the command: it runs in a
 * subtransaction, and a failure is a WARNING. The extension and its
 * incident__record_change() are found through the catalogs by OID and
 * argument types, so neither the caller's privileges on schemas nor the
 * caller's search_path changes which function is called; the function is
 * SECURITY DEFINER with a fixed search_path, and notes the calling role
 * (incident_invoker(): the outer user) and the session's login.
 *
 * Copyright (c) 2026, pg_incident authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_language.h"
#include "catalog/pg_largeobject.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_tablespace.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "tcop/deparse_utility.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/aclchk_internal.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#include "pg_incident.h"

PG_FUNCTION_INFO_V1(incident_grant_text);

/* what the hook records of one statement */
typedef struct ChangeRecord
{
	const char *kind;			/* "role" or "setting" */
	const char *tag;			/* CREATE ROLE, ALTER SYSTEM ... */
	char	   *object;			/* the role or setting, for object_identity */
	char	   *statement;		/* rebuilt from the parse tree */
} ChangeRecord;

static ProcessUtility_hook_type prev_process_utility = NULL;

static bool changes_describe(Node *stmt, ChangeRecord *rec);
static void changes_rolespec(StringInfo buf, RoleSpec *spec);
static void changes_rolespec_list(StringInfo buf, List *specs);
static void changes_role_options(StringInfo buf, List *options);
static void changes_setting(StringInfo buf, VariableSetStmt *set);
static void changes_privileges(StringInfo buf, List *privileges);
static void changes_privilege_bits(StringInfo buf, AclMode privileges);
static const char *changes_objtype_name(ObjectType objtype, bool plural);
static Oid	changes_objtype_class(ObjectType objtype);
static void changes_record(const ChangeRecord *rec);
static void incident_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
									 ProcessUtilityContext context, ParamListInfo params,
									 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc);

/*
 * Installs the hook; called once, from _PG_init.
 */
void
incident_changes_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = incident_process_utility;
}

/* Runs the statement, then records it if it is a role or system change. */
static void
incident_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						 ProcessUtilityContext context, ParamListInfo params,
						 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	ChangeRecord rec;
	bool		record;

	/* described before it runs: DROP ROLE's names are gone after */
	record = changes_describe(pstmt->utilityStmt, &rec);

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);

	if (record)
		changes_record(&rec);
}

/*
 * Fills rec for the statements event triggers do not see and returns true;
 * false for every other.
 */
static bool
changes_describe(Node *stmt, ChangeRecord *rec)
{
	StringInfoData buf;
	StringInfoData object;

	switch (nodeTag(stmt))
	{
		case T_CreateRoleStmt:
		case T_AlterRoleStmt:
		case T_AlterRoleSetStmt:
		case T_DropRoleStmt:
		case T_GrantRoleStmt:
		case T_ReassignOwnedStmt:
		case T_AlterSystemStmt:
			break;
		case T_RenameStmt:
			if (((RenameStmt *) stmt)->renameType == OBJECT_ROLE)
				break;
			return false;
		default:
			return false;
	}

	rec->kind = "role";
	rec->tag = CreateCommandName(stmt);
	initStringInfo(&buf);
	initStringInfo(&object);

	switch (nodeTag(stmt))
	{
		case T_CreateRoleStmt:
			{
				CreateRoleStmt *s = (CreateRoleStmt *) stmt;

				appendStringInfoString(&object, quote_identifier(s->role));
				appendStringInfo(&buf, "%s %s", rec->tag, object.data);
				changes_role_options(&buf, s->options);
				break;
			}
		case T_AlterRoleStmt:
			{
				AlterRoleStmt *s = (AlterRoleStmt *) stmt;

				changes_rolespec(&object, s->role);
				appendStringInfo(&buf, "%s %s", rec->tag, object.data);
				changes_role_options(&buf, s->options);
				break;
			}
		case T_AlterRoleSetStmt:
			{
				AlterRoleSetStmt *s = (AlterRoleSetStmt *) stmt;

				if (s->role)
					changes_rolespec(&object, s->role);
				else
					appendStringInfoString(&object, "ALL");
				appendStringInfo(&buf, "%s %s", rec->tag, object.data);
				if (s->database)
					appendStringInfo(&buf, " IN DATABASE %s", quote_identifier(s->database));
				appendStringInfoChar(&buf, ' ');
				changes_setting(&buf, s->setstmt);
				break;
			}
		case T_DropRoleStmt:
			{
				DropRoleStmt *s = (DropRoleStmt *) stmt;

				changes_rolespec_list(&object, s->roles);
				appendStringInfo(&buf, "%s %s%s", rec->tag, s->missing_ok ? "IF EXISTS " : "", object.data);
				break;
			}
		case T_GrantRoleStmt:
			{
				GrantRoleStmt *s = (GrantRoleStmt *) stmt;
				ListCell   *lc;

				foreach(lc, s->granted_roles)
				{
					AccessPriv *priv = lfirst_node(AccessPriv, lc);

					if (lc != list_head(s->granted_roles))
						appendStringInfoString(&object, ", ");
					appendStringInfoString(&object, quote_identifier(priv->priv_name));
				}
				appendStringInfo(&buf, "%s %s %s ", s->is_grant ? "GRANT" : "REVOKE", object.data,
								 s->is_grant ? "TO" : "FROM");
				changes_rolespec_list(&buf, s->grantee_roles);
#if PG_VERSION_NUM < 160000
				if (s->admin_opt)
					appendStringInfoString(&buf, s->is_grant ? " WITH ADMIN OPTION" : " (ADMIN OPTION)");
#else
				foreach(lc, s->opt)
				{
					DefElem    *opt = lfirst_node(DefElem, lc);

					appendStringInfo(&buf, " (%s %s)", opt->defname, defGetBoolean(opt) ? "true" : "false");
				}
#endif
				break;
			}
		case T_ReassignOwnedStmt:
			{
				ReassignOwnedStmt *s = (ReassignOwnedStmt *) stmt;

				changes_rolespec_list(&object, s->roles);
				appendStringInfo(&buf, "REASSIGN OWNED BY %s TO ", object.data);
				changes_rolespec(&buf, s->newrole);
				break;
			}
		case T_RenameStmt:
			{
				RenameStmt *s = (RenameStmt *) stmt;

				appendStringInfoString(&object, quote_identifier(s->newname));
				appendStringInfo(&buf, "ALTER ROLE %s RENAME TO %s", quote_identifier(s->subname), object.data);
				break;
			}
		case T_AlterSystemStmt:
			{
				AlterSystemStmt *s = (AlterSystemStmt *) stmt;

				rec->kind = "setting";
				if (s->setstmt->kind == VAR_RESET_ALL)
					appendStringInfoString(&object, "ALL");
				else
					appendStringInfoString(&object, s->setstmt->name);
				appendStringInfoString(&buf, "ALTER SYSTEM ");
				changes_setting(&buf, s->setstmt);
				break;
			}
		default:
			elog(ERROR, "unexpected statement type %d", (int) nodeTag(stmt));
	}
	rec->object = object.data;
	rec->statement = buf.data;
	return true;
}

/* A role as the statement named it: a name, PUBLIC, CURRENT_USER ... */
static void
changes_rolespec(StringInfo buf, RoleSpec *spec)
{
	switch (spec->roletype)
	{
		case ROLESPEC_CSTRING:
			appendStringInfoString(buf, quote_identifier(spec->rolename));
			break;
		case ROLESPEC_CURRENT_ROLE:
			appendStringInfoString(buf, "CURRENT_ROLE");
			break;
		case ROLESPEC_CURRENT_USER:
			appendStringInfoString(buf, "CURRENT_USER");
			break;
		case ROLESPEC_SESSION_USER:
			appendStringInfoString(buf, "SESSION_USER");
			break;
		case ROLESPEC_PUBLIC:
			appendStringInfoString(buf, "PUBLIC");
			break;
	}
}

static void
changes_rolespec_list(StringInfo buf, List *specs)
{
	ListCell   *lc;

	foreach(lc, specs)
	{
		if (lc != list_head(specs))
			appendStringInfoString(buf, ", ");
		changes_rolespec(buf, lfirst_node(RoleSpec, lc));
	}
}

/*
 * The options of CREATE or ALTER ROLE as their keywords; PASSWORD without
 * its value, whatever it was.
 */
static void
changes_role_options(StringInfo buf, List *options)
{
	static const struct
	{
		const char *defname;
		const char *on;
		const char *off;
	}			flags[] =
	{
		{"superuser", "SUPERUSER", "NOSUPERUSER"},
		{"createdb", "CREATEDB", "NOCREATEDB"},
		{"createrole", "CREATEROLE", "NOCREATEROLE"},
		{"inherit", "INHERIT", "NOINHERIT"},
		{"canlogin", "LOGIN", "NOLOGIN"},
		{"isreplication", "REPLICATION", "NOREPLICATION"},
		{"bypassrls", "BYPASSRLS", "NOBYPASSRLS"},
	};
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *opt = lfirst_node(DefElem, lc);
		bool		done = false;

		for (size_t i = 0; i < lengthof(flags); i++)
		{
			if (strcmp(opt->defname, flags[i].defname) == 0)
			{
				appendStringInfo(buf, " %s", defGetBoolean(opt) ? flags[i].on : flags[i].off);
				done = true;
				break;
			}
		}
		if (done)
			continue;
		if (strcmp(opt->defname, "password") == 0)
			appendStringInfoString(buf, opt->arg ? " PASSWORD" : " PASSWORD NULL");
		else if (strcmp(opt->defname, "connectionlimit") == 0)
			appendStringInfo(buf, " CONNECTION LIMIT %d", intVal(opt->arg));
		else if (strcmp(opt->defname, "validUntil") == 0)
			appendStringInfoString(buf, " VALID UNTIL");
		else if (strcmp(opt->defname, "addroleto") == 0)
		{
			appendStringInfoString(buf, " IN ROLE ");
			changes_rolespec_list(buf, (List *) opt->arg);
		}
		else if (strcmp(opt->defname, "rolemembers") == 0)
		{
			appendStringInfoString(buf, " ROLE ");
			changes_rolespec_list(buf, (List *) opt->arg);
		}
		else if (strcmp(opt->defname, "adminmembers") == 0)
		{
			appendStringInfoString(buf, " ADMIN ");
			changes_rolespec_list(buf, (List *) opt->arg);
		}
		else
			appendStringInfo(buf, " %s", opt->defname);
	}
}

/*
 * SET name = value, SET name TO DEFAULT, RESET name or RESET ALL; the value
 * only of a built-in setting that is no secret (not superuser-only, not
 * hidden from SHOW ALL), since a custom one may hold anything.
 */
static void
changes_setting(StringInfo buf, VariableSetStmt *set)
{
	switch (set->kind)
	{
		case VAR_RESET_ALL:
			appendStringInfoString(buf, "RESET ALL");
			return;
		case VAR_RESET:
			appendStringInfo(buf, "RESET %s", set->name);
			return;
		case VAR_SET_DEFAULT:
			appendStringInfo(buf, "SET %s TO DEFAULT", set->name);
			return;
		default:
			break;
	}
	appendStringInfo(buf, "SET %s", set->name);
	if (set->kind == VAR_SET_VALUE && strchr(set->name, '.') == NULL &&
		GetConfigOption(set->name, true, false) != NULL &&
		(GetConfigOptionFlags(set->name, true) & (GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_CUSTOM_PLACEHOLDER)) == 0)
	{
		char	   *value = ExtractSetVariableArgs(set);

		if (value != NULL)
			appendStringInfo(buf, " = %s", value);
	}
	else if (set->kind == VAR_SET_VALUE)
		appendStringInfoString(buf, " (value not kept)");
	else if (set->kind == VAR_SET_CURRENT)
		appendStringInfoString(buf, " FROM CURRENT");
}

/* GRANT's privileges as keywords, ALL for none named, with their columns. */
static void
changes_privileges(StringInfo buf, List *privileges)
{
	ListCell   *lc;

	if (privileges == NIL)
	{
		appendStringInfoString(buf, "ALL");
		return;
	}
	foreach(lc, privileges)
	{
		AccessPriv *priv = lfirst_node(AccessPriv, lc);

		if (lc != list_head(privileges))
			appendStringInfoString(buf, ", ");
		if (priv->priv_name == NULL)
			appendStringInfoString(buf, "ALL");
		else
		{
			for (const char *p = priv->priv_name; *p; p++)
				appendStringInfoChar(buf, pg_toupper((unsigned char) *p));
		}
		if (priv->cols != NIL)
		{
			ListCell   *col;

			appendStringInfoString(buf, " (");
			foreach(col, priv->cols)
			{
				if (col != list_head(priv->cols))
					appendStringInfoString(buf, ", ");
				appendStringInfoString(buf, quote_identifier(strVal(lfirst(col))));
			}
			appendStringInfoChar(buf, ')');
		}
	}
}

/* The keyword of an object type in GRANT: TABLE, or TABLES for defaults. */
static const char *
changes_objtype_name(ObjectType objtype, bool plural)
{
	switch (objtype)
	{
		case OBJECT_TABLE:
			return plural ? "TABLES" : "TABLE";
		case OBJECT_SEQUENCE:
			return plural ? "SEQUENCES" : "SEQUENCE";
		case OBJECT_FUNCTION:
			return plural ? "FUNCTIONS" : "FUNCTION";
		case OBJECT_PROCEDURE:
			return plural ? "PROCEDURES" : "PROCEDURE";
		case OBJECT_ROUTINE:
			return plural ? "ROUTINES" : "ROUTINE";
		case OBJECT_TYPE:
			return plural ? "TYPES" : "TYPE";
		case OBJECT_DOMAIN:
			return "DOMAIN";
		case OBJECT_SCHEMA:
			return plural ? "SCHEMAS" : "SCHEMA";
		case OBJECT_DATABASE:
			return "DATABASE";
		case OBJECT_LANGUAGE:
			return "LANGUAGE";
		case OBJECT_LARGEOBJECT:
			return "LARGE OBJECT";
		case OBJECT_TABLESPACE:
			return "TABLESPACE";
		case OBJECT_FDW:
			return "FOREIGN DATA WRAPPER";
		case OBJECT_FOREIGN_SERVER:
			return "FOREIGN SERVER";
		default:
			return "OBJECT";
	}
}

/* The catalog holding the objects GRANT names by OID. */
static Oid
changes_objtype_class(ObjectType objtype)
{
	switch (objtype)
	{
		case OBJECT_TABLE:
		case OBJECT_SEQUENCE:
			return RelationRelationId;
		case OBJECT_FUNCTION:
		case OBJECT_PROCEDURE:
		case OBJECT_ROUTINE:
			return ProcedureRelationId;
		case OBJECT_TYPE:
		case OBJECT_DOMAIN:
			return TypeRelationId;
		case OBJECT_SCHEMA:
			return NamespaceRelationId;
		case OBJECT_DATABASE:
			return DatabaseRelationId;
		case OBJECT_LANGUAGE:
			return LanguageRelationId;
		case OBJECT_LARGEOBJECT:
			return LargeObjectRelationId;
		case OBJECT_TABLESPACE:
			return TableSpaceRelationId;
		case OBJECT_FDW:
			return ForeignDataWrapperRelationId;
		case OBJECT_FOREIGN_SERVER:
			return ForeignServerRelationId;
		default:
			return InvalidOid;
	}
}

/* GRANT's privileges of a bitmask, as its keywords */
static void
changes_privilege_bits(StringInfo buf, AclMode privileges)
{
	static const struct
	{
		AclMode		bit;
		const char *name;
	}			names[] =
	{
		{ACL_SELECT, "SELECT"}, {ACL_INSERT, "INSERT"}, {ACL_UPDATE, "UPDATE"},
		{ACL_DELETE, "DELETE"}, {ACL_TRUNCATE, "TRUNCATE"}, {ACL_REFERENCES, "REFERENCES"},
		{ACL_TRIGGER, "TRIGGER"}, {ACL_EXECUTE, "EXECUTE"}, {ACL_USAGE, "USAGE"},
		{ACL_CREATE, "CREATE"}, {ACL_CREATE_TEMP, "TEMPORARY"}, {ACL_CONNECT, "CONNECT"},
		{ACL_SET, "SET"}, {ACL_ALTER_SYSTEM, "ALTER SYSTEM"},
	};
	bool		first = true;

	for (size_t i = 0; i < lengthof(names); i++)
	{
		if ((privileges & names[i].bit) == 0)
			continue;
		appendStringInfo(buf, "%s%s", first ? "" : ", ", names[i].name);
		first = false;
	}
}

/* objects a GRANT text names one by one; the rest are counted */
#define CHANGES_GRANT_OBJECTS_NAMED 10

/*
 * incident__grant_text(pg_ddl_command) returns text: a GRANT, REVOKE or
 * ALTER DEFAULT PRIVILEGES as the event trigger collected it, rebuilt
 * from the command (privileges, objects by identity, grantees); NULL for
 * any other command.
 */
Datum
incident_grant_text(PG_FUNCTION_ARGS)
{
	CollectedCommand *cmd = (CollectedCommand *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	initStringInfo(&buf);
	if (cmd->type == SCT_Grant)
	{
		/* a collected GRANT keeps no parse tree: all is in istmt */
		InternalGrant *istmt = cmd->d.grant.istmt;
		Oid			classid = changes_objtype_class(istmt->objtype);
		int			n = 0;
		ListCell   *lc;

		appendStringInfoString(&buf, istmt->is_grant ? "GRANT " : "REVOKE ");
		if (!istmt->is_grant && istmt->grant_option)
			appendStringInfoString(&buf, "GRANT OPTION FOR ");
		if (istmt->all_privs)
			appendStringInfoString(&buf, "ALL");
		else
		{
			changes_privilege_bits(&buf, istmt->privileges);
			if (istmt->col_privs != NIL)
			{
				if (istmt->privileges != 0)
					appendStringInfoString(&buf, ", ");
				changes_privileges(&buf, istmt->col_privs);
			}
		}
		appendStringInfo(&buf, " ON %s ", changes_objtype_name(istmt->objtype, false));
		foreach(lc, istmt->objects)
		{
			ObjectAddress addr;
			char	   *identity = NULL;

			CHECK_FOR_INTERRUPTS();
			if (n == CHANGES_GRANT_OBJECTS_NAMED)
			{
				appendStringInfo(&buf, " and %d more", list_length(istmt->objects) - n);
				break;
			}
			if (n++ > 0)
				appendStringInfoString(&buf, ", ");
			if (OidIsValid(classid))
			{
				ObjectAddressSet(addr, classid, lfirst_oid(lc));
				identity = getObjectIdentity(&addr, true);
			}
			if (identity != NULL)
				appendStringInfoString(&buf, identity);
			else
				appendStringInfo(&buf, "%u", lfirst_oid(lc));
		}
		appendStringInfoString(&buf, istmt->is_grant ? " TO " : " FROM ");
		foreach(lc, istmt->grantees)
		{
			Oid			grantee = lfirst_oid(lc);
			char	   *name = grantee == ACL_ID_PUBLIC ? NULL : GetUserNameFromId(grantee, true);

			if (lc != list_head(istmt->grantees))
				appendStringInfoString(&buf, ", ");
			if (grantee == ACL_ID_PUBLIC)
				appendStringInfoString(&buf, "PUBLIC");
			else if (name != NULL)
				appendStringInfoString(&buf, quote_identifier(name));
			else
				appendStringInfo(&buf, "%u", grantee);
		}
		if (istmt->is_grant && istmt->grant_option)
			appendStringInfoString(&buf, " WITH GRANT OPTION");
	}
	else if (cmd->type == SCT_AlterDefaultPrivileges && cmd->parsetree != NULL &&
			 IsA(cmd->parsetree, AlterDefaultPrivilegesStmt))
	{
		AlterDefaultPrivilegesStmt *stmt = (AlterDefaultPrivilegesStmt *) cmd->parsetree;
		GrantStmt  *grant = stmt->action;
		ListCell   *lc;

		appendStringInfoString(&buf, "ALTER DEFAULT PRIVILEGES");
		foreach(lc, stmt->options)
		{
			DefElem    *opt = lfirst_node(DefElem, lc);
			List	   *names = (List *) opt->arg;
			ListCell   *name;

			if (strcmp(opt->defname, "roles") == 0)
			{
				appendStringInfoString(&buf, " FOR ROLE ");
				changes_rolespec_list(&buf, names);
			}
			else if (strcmp(opt->defname, "schemas") == 0)
			{
				appendStringInfoString(&buf, " IN SCHEMA ");
				foreach(name, names)
				{
					if (name != list_head(names))
						appendStringInfoString(&buf, ", ");
					appendStringInfoString(&buf, quote_identifier(strVal(lfirst(name))));
				}
			}
		}
		appendStringInfoString(&buf, grant->is_grant ? " GRANT " : " REVOKE ");
		if (!grant->is_grant && grant->grant_option)
			appendStringInfoString(&buf, "GRANT OPTION FOR ");
		changes_privileges(&buf, grant->privileges);
		appendStringInfo(&buf, " ON %s", changes_objtype_name(cmd->d.defprivs.objtype, true));
		appendStringInfoString(&buf, grant->is_grant ? " TO " : " FROM ");
		changes_rolespec_list(&buf, grant->grantees);
		if (grant->is_grant && grant->grant_option)
			appendStringInfoString(&buf, " WITH GRANT OPTION");
	}
	else
		PG_RETURN_NULL();

	PG_RETURN_TEXT_P(cstring_to_text(buf.data));
}

/*
 * Records the change through incident__record_change(), in a
 * subtransaction; nothing when pg_incident is not installed here (or only
 * a version without the change log), while an extension script runs, or
 * where nothing can be written.
 */
static void
changes_record(const ChangeRecord *rec)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner_res = CurrentResourceOwner;
	Oid			ext;

	if (!IsTransactionState() || creating_extension || RecoveryInProgress() || XactReadOnly)
		return;
	ext = get_extension_oid("pg_incident", true);
	if (!OidIsValid(ext))
		return;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		Relation	rel;
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tup;
		Oid			schema = InvalidOid;
		Oid			fn = InvalidOid;

		/* the extension's schema, from its catalog row */
		rel = table_open(ExtensionRelationId, AccessShareLock);
		ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(ext));
		scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
		tup = systable_getnext(scan);
		if (HeapTupleIsValid(tup))
			schema = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
		systable_endscan(scan);
		table_close(rel, AccessShareLock);

		/* an older version of pg_incident here has no change log */
		if (OidIsValid(schema))
		{
			Oid			argtypes[6] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, NAMEOID, TEXTOID};
			char	   *nspname = get_namespace_name(schema);

			if (nspname != NULL)
				fn = LookupFuncName(list_make2(makeString(nspname), makeString("incident__record_change")),
									6, argtypes, true);
		}
		if (OidIsValid(fn))
		{
			LOCAL_FCINFO(fcinfo, 6);
			FmgrInfo	flinfo;

			fmgr_info(fn, &flinfo);
			InitFunctionCallInfoData(*fcinfo, &flinfo, 6, InvalidOid, NULL, NULL);
			fcinfo->args[0].value = CStringGetTextDatum(rec->kind);
			fcinfo->args[0].isnull = false;
			fcinfo->args[1].value = CStringGetTextDatum(rec->tag);
			fcinfo->args[1].isnull = false;
			fcinfo->args[2].value = (Datum) 0;
			fcinfo->args[2].isnull = true;
			fcinfo->args[3].value = CStringGetTextDatum(rec->object);
			fcinfo->args[3].isnull = false;
			fcinfo->args[4].value = (Datum) 0;
			fcinfo->args[4].isnull = true;
			fcinfo->args[5].value = CStringGetTextDatum(rec->statement);
			fcinfo->args[5].isnull = false;
			(void) FunctionCallInvoke(fcinfo);
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner_res;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner_res;
		/* a cancel or a shutdown is not a failure to record: it goes on */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED || edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(edata);
		ereport(WARNING,
				(errmsg("pg_incident could not record the change in incident_change: %s", edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}
