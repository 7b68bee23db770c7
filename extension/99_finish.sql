/* extension/99_finish.sql: the last step of every install script.
 *
 * The features grant to incident_viewer, incident_responder and
 * incident_admin what each may use; nothing of pg_incident stays callable by
 * PUBLIC. Every upgrade script ends with the same call.
 */

SELECT @extschema@.incident__revoke_public();
