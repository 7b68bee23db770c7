-- Installing pg_incident: the objects, their comments, the seeded playbook data.
\set SHOW_CONTEXT never
SET datestyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
CREATE EXTENSION pg_incident;
-- the later files act as this role, so that actors in their output do not
-- depend on the OS user running the tests
CREATE ROLE regress_incident_dba SUPERUSER;

-- every user-facing object of the extension carries a COMMENT
SELECT pg_describe_object(d.classid, d.objid, 0) AS object_without_comment
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_incident')
   AND d.deptype = 'e'
   AND d.classid IN ('pg_class'::regclass, 'pg_proc'::regclass)
   AND obj_description(d.objid, d.classid::regclass::name) IS NULL
   AND NOT (d.classid = 'pg_class'::regclass
            AND (SELECT relkind FROM pg_class WHERE oid = d.objid) IN ('S', 'i'))
 ORDER BY 1;

-- the tables, views and functions a user types
SELECT c.relname, c.relkind
  FROM pg_class c
  JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_incident')
   AND c.relkind IN ('r', 'v')
 ORDER BY c.relkind, c.relname;

SELECT p.oid::regprocedure AS function, p.prosecdef AS security_definer,
       coalesce(array_to_string(p.proconfig, ','), '') AS config
  FROM pg_proc p
  JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_incident')
 ORDER BY p.oid::regprocedure::text COLLATE "C";

-- every SECURITY DEFINER function pins search_path
SELECT count(*) AS definer_without_search_path
  FROM pg_proc p
  JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_incident')
   AND p.prosecdef
   AND NOT coalesce(p.proconfig::text[] && ARRAY['search_path=pg_catalog, pg_temp'], false);

-- the severity table of the playbook
SELECT severity, name, response_time, update_every, pir_due, page, array_length(examples, 1) AS examples, impact
  FROM incident_severity ORDER BY severity;

-- the playbook's checklists and which severities get them
SELECT t.checklist, t.phase, t.severities, count(*) AS items,
       count(*) FILTER (WHERE i.severities IS NOT NULL) AS severity_specific_items
  FROM incident_checklist_template t JOIN incident_checklist_template_item i USING (checklist)
 GROUP BY t.checklist, t.phase, t.severities, t.sort_order
 ORDER BY t.sort_order;

-- roles and who may call what
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'incident\_%' ORDER BY 1;
SELECT r.rolname AS role, m.rolname AS member
  FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
 WHERE r.rolname LIKE 'incident\_%' ORDER BY 1, 2;
SELECT f, has_function_privilege('incident_viewer', f, 'EXECUTE') AS viewer,
       has_function_privilege('incident_responder', f, 'EXECUTE') AS responder,
       has_function_privilege('public', f, 'EXECUTE') AS public
  FROM unnest(ARRAY['incident_declare(text,text,text,timestamptz)', 'incident_acknowledge(text,text)',
                    'incident_close(text)', 'incident_checklist(text)', 'incident__event(incident,text,text,text,jsonb,timestamptz)']::regprocedure[]) AS f;
SELECT t, has_table_privilege('incident_viewer', t, 'SELECT') AS viewer_select,
       has_table_privilege('incident_responder', t, 'UPDATE') AS responder_update,
       has_table_privilege('incident_admin', t, 'UPDATE') AS admin_update
  FROM unnest(ARRAY['incident', 'incident_event', 'incident_severity', 'incident_checklist_template',
                    'incident_dashboard', 'incident_timeline']::regclass[]) AS t;

-- tables registered with pg_dump
SELECT dumped, condition
  FROM pg_extension, unnest(extconfig::regclass[], extcondition) AS c(dumped, condition)
 WHERE extname = 'pg_incident' ORDER BY dumped::text COLLATE "C";

-- works right after CREATE EXTENSION, in plain psql
SELECT incident_declare('P1', 'db down') ~ '^INC-[0-9]{4}-[0-9]{4}-001$' AS declared;
