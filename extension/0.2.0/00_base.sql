/* extension/0.2.0/00_base.sql: what the other parts of 0.2.0 build on.
 *
 * 0.2.0 brings severity classification, SLA clocks on business calendars,
 * on-call rotations and escalation policies. Their timeline events need new
 * kinds.
 */

ALTER TABLE @extschema@.incident_event DROP CONSTRAINT incident_event_kind_check;
ALTER TABLE @extschema@.incident_event ADD CONSTRAINT incident_event_kind_check
    CHECK (kind IN ('declared', 'acknowledged', 'status_update', 'severity_changed', 'assigned', 'note',
                    'checklist', 'resolved', 'closed', 'escalated', 'reminder'));

COMMENT ON COLUMN @extschema@.incident_event.kind IS
'declared, acknowledged, status_update, severity_changed, assigned, note, checklist, resolved, closed, escalated or reminder.';
COMMENT ON COLUMN @extschema@.incident_timeline.kind IS
'declared, acknowledged, status_update, severity_changed, assigned, note, checklist, resolved, closed, escalated or reminder.';
