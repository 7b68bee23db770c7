/* extension/70_notify.sql: notifications that are never lost, and the
 * escalations and reminders the worker fires on time.
 *
 * A channel (incident_channel) is where people are told: a webhook in the
 * json or slack format, or mail over SMTP. Every timeline event
 * (incident_event) that a channel's routing takes writes one outbox row
 * (incident_notification) per channel, rendered as the channel's body, in
 * the same transaction as the event: a rolled-back declaration sends
 * nothing, and a committed one is sent whatever happens to the server
 * afterwards. The commit wakes the background worker (src/worker/outbox.c),
 * which claims due rows in a short transaction, posts or mails them through
 * its HTTP engine once the claim has committed, and records each outcome in
 * another: delivered (a 2xx answer, or the relay's 250), or retried with
 * exponential back-off and jitter (Retry-After honoured) until the row is
 * older than pg_incident.notification_dead_after, when it is dead. Delivery
 * is at least once; the event id is the idempotency key a receiver dedups
 * on.
 *
 * The sweep (incident__sweep), in the same worker, fires what falls due
 * while nobody acts: escalation levels through incident_escalate()'s code,
 * a reminder when a response deadline passes, one per overdue period of a
 * status update.
 */

------------------------------------------------------------------------------
-- Channels
------------------------------------------------------------------------------

-- what a mail channel takes as an address: a plain one, no name or comment
CREATE FUNCTION @extschema@.incident__mail_address_ok(address text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT address ~ '^[^@\s<>(),;:"\[\]\\]{1,64}@[A-Za-z0-9.-]{1,253}$'
$$;

COMMENT ON FUNCTION @extschema@.incident__mail_address_ok(text) IS
'Internal: whether the text is a plain mail address, such as incidents@example.com (no display name, no comment, nothing an SMTP envelope would misread).';

-- every element a plain address (none NULL)
CREATE FUNCTION @extschema@.incident__mail_addresses_ok(addresses text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(pg_catalog.bool_and(coalesce(@extschema@.incident__mail_address_ok(a), false)), true)
      FROM pg_catalog.unnest(addresses) AS a
$$;

COMMENT ON FUNCTION @extschema@.incident__mail_addresses_ok(text[]) IS
'Internal: whether every element is a plain mail address (incident__mail_address_ok), none NULL.';

-- the events a channel hears of when its creator names none
CREATE FUNCTION @extschema@.incident__channel_default_events()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '{declared,acknowledged,status_update,severity_changed,escalated,reminder,resolved,closed,probe}'::text[]
$$;

COMMENT ON FUNCTION @extschema@.incident__channel_default_events() IS
'Internal: the timeline events a channel hears of by default: all but assignments, notes and checklist ticks.';

CREATE TABLE @extschema@.incident_channel (
    id            serial PRIMARY KEY,
    name          text NOT NULL UNIQUE
                  CONSTRAINT incident_channel_name_check
                  CHECK (name = pg_catalog.btrim(name) AND name <> '' AND pg_catalog.length(name) <= 100),
    kind          text NOT NULL DEFAULT 'webhook'
                  CONSTRAINT incident_channel_kind_check CHECK (kind IN ('webhook', 'email')),
    url           text NOT NULL,
    format        text NOT NULL DEFAULT 'json'
                  CONSTRAINT incident_channel_format_check CHECK (format IN ('json', 'slack', 'text')),
    min_severity  text NOT NULL DEFAULT 'P4'
                  CONSTRAINT incident_channel_min_severity_check CHECK (min_severity IN ('P1', 'P2', 'P3', 'P4')),
    secret        text CONSTRAINT incident_channel_secret_check
                  CHECK (pg_catalog.length(secret) BETWEEN 16 AND 512),
    events        text[] NOT NULL
                  DEFAULT @extschema@.incident__channel_default_events()
                  CONSTRAINT incident_channel_events_check
                  CHECK (events <@ '{declared,acknowledged,status_update,severity_changed,assigned,note,checklist,resolved,closed,escalated,reminder,probe}'::text[]
                         AND events <> '{}'),
    components    text[] CONSTRAINT incident_channel_components_check
                  CHECK (pg_catalog.array_position(components, NULL) IS NULL AND components <> '{}'),
    link_template text CONSTRAINT incident_channel_link_template_check
                  CHECK (link_template ~* '^https?://' AND pg_catalog.length(link_template) <= 500),
    timeout       interval NOT NULL DEFAULT '10 seconds'
                  CONSTRAINT incident_channel_timeout_check
                  CHECK (timeout >= interval '100 milliseconds' AND timeout <= interval '1 minute'),
    enabled       boolean NOT NULL DEFAULT true,
    created_by    text NOT NULL DEFAULT current_user,
    changed_at    timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    -- email
    mail_from     text CONSTRAINT incident_channel_mail_from_check
                  CHECK (@extschema@.incident__mail_address_ok(mail_from)),
    mail_to       text[] CONSTRAINT incident_channel_mail_to_check
                  CHECK (mail_to <> '{}' AND pg_catalog.cardinality(mail_to) <= 100
                         AND @extschema@.incident__mail_addresses_ok(mail_to)),
    smtp_user     text CONSTRAINT incident_channel_smtp_user_check CHECK (smtp_user !~ '[\r\n]' AND pg_catalog.length(smtp_user) <= 256),
    smtp_password text CONSTRAINT incident_channel_smtp_password_check CHECK (smtp_password !~ '[\r\n]' AND pg_catalog.length(smtp_password) <= 512),
    CONSTRAINT incident_channel_url_check
        CHECK (CASE kind WHEN 'email' THEN url ~* '^smtps?://[^/?#@\s]+([/?#]|$)'
                         ELSE url ~* '^https?://[^/?#@\s]+([/?#]|$)' END
               AND url !~ '[[:space:][:cntrl:]]' AND pg_catalog.length(url) <= 2048),
    CONSTRAINT incident_channel_kind_format_check
        CHECK ((kind = 'email') = (format = 'text')),
    CONSTRAINT incident_channel_email_check
        CHECK (CASE kind WHEN 'email' THEN mail_from IS NOT NULL AND mail_to IS NOT NULL AND secret IS NULL
                                           AND (smtp_password IS NULL OR smtp_user IS NOT NULL)
                         ELSE mail_from IS NULL AND mail_to IS NULL AND smtp_user IS NULL AND smtp_password IS NULL END)
);

COMMENT ON TABLE @extschema@.incident_channel IS
'Where notifications go: webhooks in the json or slack format, and mail over SMTP (kind email, format text). Routing: the timeline events listed in events, of incidents of min_severity or worse, of the components listed (NULL: all). Written by incident_channel_webhook(), incident_channel_email() and incident_channel_drop(); url, secret, smtp_user and smtp_password are readable by incident_admin only.';
COMMENT ON COLUMN @extschema@.incident_channel.url IS 'The webhook''s URL (a Slack incoming webhook''s URL is its credential: incident_admin only reads it).';
COMMENT ON COLUMN @extschema@.incident_channel.format IS 'json: the versioned envelope of docs/notifications.md; slack: {"text": ...} in the playbook''s status-update shape.';
COMMENT ON COLUMN @extschema@.incident_channel.min_severity IS 'The least severe incidents it hears of: P4 all, P1 only P1.';
COMMENT ON COLUMN @extschema@.incident_channel.secret IS 'Signs each body (HMAC-SHA256 with a timestamp, header X-Incident-Signature); NULL: unsigned. incident_admin only reads it.';
COMMENT ON COLUMN @extschema@.incident_channel.events IS 'The kinds of timeline event it hears of.';
COMMENT ON COLUMN @extschema@.incident_channel.components IS 'Only incidents of these components; NULL: all incidents.';
COMMENT ON COLUMN @extschema@.incident_channel.link_template IS 'A link to the incident for the body, {code} replaced by its code, such as ''https://status.example/incidents/{code}''.';
COMMENT ON COLUMN @extschema@.incident_channel.timeout IS 'How long one delivery may take.';
COMMENT ON COLUMN @extschema@.incident_channel.kind IS 'webhook (url, format, secret) or email (url is the smtp:// or smtps:// relay; mail_from, mail_to, smtp_user, smtp_password).';
COMMENT ON COLUMN @extschema@.incident_channel.enabled IS 'False: no new notifications are queued for it, and its pending ones wait.';
COMMENT ON COLUMN @extschema@.incident_channel.changed_at IS 'When the channel was last created or replaced; notifications rendered before it are rendered again before their next attempt.';
COMMENT ON COLUMN @extschema@.incident_channel.mail_from IS 'An email channel''s sender address (the envelope''s and the From header''s).';
COMMENT ON COLUMN @extschema@.incident_channel.mail_to IS 'An email channel''s recipients; an escalation or reminder also goes to the email of the person it is for.';
COMMENT ON COLUMN @extschema@.incident_channel.smtp_user IS 'The SMTP login of an email channel, or NULL for none.';
COMMENT ON COLUMN @extschema@.incident_channel.smtp_password IS 'The SMTP password (sent over TLS only); incident_admin only reads it.';

COMMENT ON CONSTRAINT incident_channel_name_check ON @extschema@.incident_channel IS 'A channel''s name has 1 to 100 characters, such as "ops-slack".';
COMMENT ON CONSTRAINT incident_channel_kind_check ON @extschema@.incident_channel IS 'A channel is a webhook or an email channel.';
COMMENT ON CONSTRAINT incident_channel_url_check ON @extschema@.incident_channel IS 'Give a webhook an http:// or https:// URL, an email channel an smtp:// or smtps:// URL, with a host, without a user name or password, spaces or control characters, and at most 2048 characters long, such as ''https://hooks.example/incidents'' or ''smtp://mail.example:587''.';
COMMENT ON CONSTRAINT incident_channel_format_check ON @extschema@.incident_channel IS 'Give json or slack (an email channel''s format is text).';
COMMENT ON CONSTRAINT incident_channel_kind_format_check ON @extschema@.incident_channel IS 'An email channel sends text; a webhook json or slack.';
COMMENT ON CONSTRAINT incident_channel_email_check ON @extschema@.incident_channel IS 'An email channel has mail_from and mail_to (and no secret), and a smtp_password only with its smtp_user; a webhook has none of the mail settings.';
COMMENT ON CONSTRAINT incident_channel_mail_from_check ON @extschema@.incident_channel IS 'Give a plain address, such as ''incidents@example.com''.';
COMMENT ON CONSTRAINT incident_channel_mail_to_check ON @extschema@.incident_channel IS 'Give 1 to 100 plain addresses, such as ''{oncall@example.com,cto@example.com}''.';
COMMENT ON CONSTRAINT incident_channel_smtp_user_check ON @extschema@.incident_channel IS 'Give a login of at most 256 characters, on one line.';
COMMENT ON CONSTRAINT incident_channel_smtp_password_check ON @extschema@.incident_channel IS 'Give a password of at most 512 characters, on one line.';
COMMENT ON CONSTRAINT incident_channel_min_severity_check ON @extschema@.incident_channel IS 'Give P1, P2, P3 or P4: the least severe incidents the channel hears of.';
COMMENT ON CONSTRAINT incident_channel_secret_check ON @extschema@.incident_channel IS 'Give a secret of 16 to 512 characters (the receiver keeps the same), or NULL for unsigned bodies.';
COMMENT ON CONSTRAINT incident_channel_events_check ON @extschema@.incident_channel IS 'Give timeline event kinds: declared, acknowledged, status_update, severity_changed, assigned, note, checklist, resolved, closed, escalated, reminder, probe.';
COMMENT ON CONSTRAINT incident_channel_components_check ON @extschema@.incident_channel IS 'Give component names, or NULL for all incidents.';
COMMENT ON CONSTRAINT incident_channel_link_template_check ON @extschema@.incident_channel IS 'Give an http:// or https:// URL of at most 500 characters, with {code} where the incident''s code goes.';
COMMENT ON CONSTRAINT incident_channel_timeout_check ON @extschema@.incident_channel IS 'Give a timeout from ''100 milliseconds'' to ''1 minute'', such as ''10 seconds''.';

SELECT @extschema@.incident__checked_table('@extschema@.incident_channel', 'name');

------------------------------------------------------------------------------
-- The outbox
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_notification (
    id              bigserial PRIMARY KEY,
    -- no foreign key either to the channel: every declaration would lock its
    -- row (FOR KEY SHARE, a multixact under concurrency) to check it;
    -- incident_channel_drop() deletes a channel's notifications with it
    channel_id      int NOT NULL,
    -- no foreign keys to the timeline and the incidents: they are never
    -- deleted, and a reference would change TRUNCATE's refusal of them
    event_id        bigint NOT NULL,
    incident_id     bigint NOT NULL,
    event_kind      text NOT NULL,
    body            text NOT NULL,
    content_type    text NOT NULL,
    recipients      text[],
    created_at      timestamptz NOT NULL,
    queued_at       timestamptz NOT NULL,
    rendered_at     timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    claimed_at      timestamptz,
    last_attempt_at timestamptz,
    last_status     int,
    last_error      text,
    delivered_at    timestamptz,
    UNIQUE (channel_id, event_id)
);

CREATE INDEX incident_notification_due_idx ON @extschema@.incident_notification (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX incident_notification_order_idx ON @extschema@.incident_notification (channel_id, incident_id, id)
    WHERE state = 'pending';
CREATE INDEX incident_notification_event_idx ON @extschema@.incident_notification (event_id);

COMMENT ON TABLE @extschema@.incident_notification IS
'The outbox: one row per event and channel, written in the event''s transaction with the body rendered then; the worker delivers it (state pending, then delivered or dead). Deliveries of one incident to one channel go in order.';
COMMENT ON COLUMN @extschema@.incident_notification.created_at IS 'When the event happened.';
COMMENT ON COLUMN @extschema@.incident_notification.body IS 'What is posted or mailed: the json envelope, the slack text, or the whole mail (headers and text), rendered for the channel.';
COMMENT ON COLUMN @extschema@.incident_notification.content_type IS 'The body''s type: application/json for webhooks, message/rfc822 for mail.';
COMMENT ON COLUMN @extschema@.incident_notification.state IS 'pending (waiting, retrying or in flight), delivered or dead.';
COMMENT ON COLUMN @extschema@.incident_notification.attempts IS 'Attempts whose outcome was recorded.';
COMMENT ON COLUMN @extschema@.incident_notification.last_status IS 'The HTTP status or SMTP reply code of the last attempt; NULL when no answer came.';
COMMENT ON COLUMN @extschema@.incident_notification.last_error IS 'Why the last attempt failed, at most 1,000 characters; never a secret.';
COMMENT ON COLUMN @extschema@.incident_notification.recipients IS 'A mail''s envelope recipients: the channel''s mail_to, and the email of the person an escalation or reminder is for.';
COMMENT ON COLUMN @extschema@.incident_notification.queued_at IS 'When it was queued: at the event, or by incident_notification_retry(); the age after which a failing delivery is dead counts from here.';
COMMENT ON COLUMN @extschema@.incident_notification.next_attempt_at IS 'When the worker tries next (after a failure: exponential back-off with jitter, or the receiver''s Retry-After).';
COMMENT ON COLUMN @extschema@.incident_notification.rendered_at IS 'When body, content_type and recipients were rendered: at the event, or again after the channel changed (incident_channel.changed_at).';
COMMENT ON COLUMN @extschema@.incident_notification.claimed_at IS 'Set while the worker has the delivery in flight; a claim older than the channel''s timeout and a minute is a crashed worker''s, and is tried again.';

------------------------------------------------------------------------------
-- Rendering
------------------------------------------------------------------------------

-- the json envelope, version 1 (docs/notifications.md)
CREATE FUNCTION @extschema@.incident__notification_json(inc @extschema@.incident, e @extschema@.incident_event,
                                                        link_template text)
RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
BEGIN
    -- json, not jsonb: the keys in this order, and no binary form to build;
    -- every time in UTC, whatever the TimeZone of the session that queued it
    RETURN pg_catalog.json_build_object(
        'version', 1,
        'event_id', e.id,
        'event', e.kind,
        'at', e.at,
        'actor', e.actor,
        'recorded_by', e.recorded_by,
        'message', e.message,
        'details', e.details,
        'incident', pg_catalog.json_build_object(
            'code', inc.code,
            'severity', inc.severity,
            'status', e.status,
            'title', inc.title,
            'component', inc.component,
            'declared_at', inc.declared_at,
            'acknowledged_at', inc.acknowledged_at,
            'resolved_at', inc.resolved_at,
            'roles', pg_catalog.json_build_object('incident_commander', inc.incident_commander,
                                                   'technical_lead', inc.technical_lead,
                                                   'communications_lead', inc.communications_lead),
            'clocks', pg_catalog.json_build_object('response_due', inc.response_due,
                                                    'next_update_due', inc.next_update_due,
                                                    'pir_due', inc.pir_due),
            'link', pg_catalog.replace(link_template, '{code}', inc.code)));
END
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_json(@extschema@.incident, @extschema@.incident_event, text) IS
'Internal: the json envelope (version 1) of an event: event id, kind, time, actor, the role that recorded it, message, details, and the incident''s code, severity, status, title, component, times, roles, clocks and link; every time in UTC (+00:00), whatever the session''s TimeZone.';

-- what Slack would read as markup stays text: & < > escaped (no <!channel>
-- from a title); and the plain @channel, @here, @all and @everyone that
-- Slack-compatible chats (Mattermost, Rocket.Chat) read as mentions get a
-- zero-width space after the @
CREATE FUNCTION @extschema@.incident__slack_escape(t text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.regexp_replace(
               pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(t, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
               '@(channel|here|all|everyone)\M', E'@\u200B\\1', 'gi')
$$;

COMMENT ON FUNCTION @extschema@.incident__slack_escape(text) IS
'Internal: text for a Slack message, with &, < and > escaped as Slack asks, and a zero-width space after the @ of @channel, @here, @all and @everyone (mentions in Mattermost and Rocket.Chat), so that no title or update pings a whole channel or becomes a link.';

-- the playbook's status-update template, the one text both the slack and
-- the mail bodies show; for_slack escapes what users typed and links
CREATE FUNCTION @extschema@.incident__status_update_text(inc @extschema@.incident, e @extschema@.incident_event,
                                                         link_template text, for_slack boolean)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH t AS (
        SELECT CASE WHEN for_slack THEN @extschema@.incident__slack_escape(inc.title) ELSE inc.title END AS impact,
               CASE WHEN e.kind = 'declared'
                    THEN 'declared; response due '
                         || pg_catalog.to_char(inc.response_due AT TIME ZONE @extschema@.incident_timezone(), 'YYYY-MM-DD HH24:MI')
                    WHEN for_slack THEN @extschema@.incident__slack_escape(coalesce(e.message, pg_catalog.replace(e.kind, '_', ' ')))
                    ELSE coalesce(e.message, pg_catalog.replace(e.kind, '_', ' ')) END AS action,
               CASE WHEN for_slack THEN @extschema@.incident__slack_escape(e.details->>'responder')
                         -- a chat handle Slack links: @name or <@U...>, but not one
                         -- that pings everyone (a responder named @channel)
                         || coalesce(' ' || pg_catalog.regexp_replace(
                                pg_catalog.substring(e.details->>'chat', '^(@[A-Za-z0-9._-]{1,80}|<@[A-Z0-9]{1,30}>)$'),
                                '^@(channel|here|all|everyone)$', E'@\u200B\\1', 'i'), '')
                    ELSE e.details->>'responder' END AS person,
               pg_catalog.replace(link_template, '{code}', inc.code) AS link)
    SELECT pg_catalog.concat_ws(E'\n',
        pg_catalog.format('%sINCIDENT %s - %s', CASE WHEN inc.severity = 'P1' THEN '🚨 ' END,
                          pg_catalog.upper(pg_catalog.replace(e.kind, '_', ' ')),
                          pg_catalog.to_char(e.at AT TIME ZONE @extschema@.incident_timezone(), 'YYYY-MM-DD HH24:MI')
                          || ' ' || @extschema@.incident_timezone()),
        pg_catalog.format('Incident ID: %s (%s)', inc.code, inc.severity),
        'Status: ' || pg_catalog.initcap(e.status),
        -- what users typed keeps its line breaks, but every line after its
        -- first is indented: no "Status: resolved" line of its own can look
        -- like the template's
        'Impact: ' || pg_catalog.regexp_replace(t.impact, '\r\n?|\n', E'\n    ', 'g'),
        'Actions: ' || pg_catalog.regexp_replace(t.action, '\r\n?|\n', E'\n    ', 'g'),
        -- an escalation or reminder names its person
        'To: ' || pg_catalog.regexp_replace(t.person, '\r\n?|\n', ' ', 'g'),
        'Next Update: ' || pg_catalog.to_char(inc.next_update_due AT TIME ZONE @extschema@.incident_timezone(),
                                              'YYYY-MM-DD HH24:MI'),
        CASE WHEN for_slack THEN '<' || @extschema@.incident__slack_escape(t.link) || '|' || inc.code || '>' ELSE t.link END)
      FROM t
$$;

COMMENT ON FUNCTION @extschema@.incident__status_update_text(@extschema@.incident, @extschema@.incident_event, text, boolean) IS
'Internal: an event in the shape of the playbook''s status-update template (a siren for P1; Incident ID, Status, Impact, Actions, the person an escalation or reminder is for, Next Update, the link); what users typed keeps its line breaks with the lines after the first indented, so that it cannot fake a line of the template; for Slack, it is escaped, the chat handle and the link are Slack''s.';

CREATE FUNCTION @extschema@.incident__notification_slack(inc @extschema@.incident, e @extschema@.incident_event,
                                                         link_template text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.jsonb_build_object('text', @extschema@.incident__status_update_text(inc, e, link_template, true))
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_slack(@extschema@.incident, @extschema@.incident_event, text) IS
'Internal: the slack body {"text": ...} of an event: incident__status_update_text() for Slack.';

-- a header's text: one line of printable text (no header from a title with
-- CR or LF); when it is not ASCII, RFC 2047 encoded words of at most 45
-- octets of text (72 characters, under the limit of 75), folded one a line
CREATE FUNCTION @extschema@.incident__mail_header(t text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    x text := pg_catalog.btrim(pg_catalog.regexp_replace(t, '[[:cntrl:]]+', ' ', 'g'));
    words text[] := '{}';
    word text := '';
    ch text;
BEGIN
    IF x ~ '^[ -~]*$' THEN
        RETURN x;
    END IF;
    FOREACH ch IN ARRAY pg_catalog.regexp_split_to_array(x, '') LOOP
        -- 39 octets: 52 characters of base64, a 64-character word, a first line of 73 with "Subject: "
        IF pg_catalog.octet_length(pg_catalog.convert_to(word || ch, 'UTF8')) > 39 THEN
            words := words || word;
            word := '';
        END IF;
        word := word || ch;
    END LOOP;
    words := words || word;
    RETURN (SELECT pg_catalog.string_agg('=?UTF-8?B?' || pg_catalog.encode(pg_catalog.convert_to(w, 'UTF8'), 'base64') || '?=',
                                         E'\r\n ' ORDER BY k)
              FROM pg_catalog.unnest(words) WITH ORDINALITY AS u(w, k));
END
$$;

COMMENT ON FUNCTION @extschema@.incident__mail_header(text) IS
'Internal: text for a mail header: control characters (CR, LF, tabs) made spaces, so that nothing typed adds a header; when it is not ASCII, RFC 2047 encoded words of at most 64 characters, folded one a line, so that every line of the header, its name included, stays under 78 characters.';

-- a mail's text on lines SMTP carries: CRLF line ends, whatever ended them
-- before, and no line over 200 characters (800 octets, under SMTP's 998),
-- broken at its last space before that when it has one
CREATE FUNCTION @extschema@.incident__mail_lines(t text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    line text;
    lines text[] := '{}';
    cut int;
BEGIN
    FOREACH line IN ARRAY pg_catalog.regexp_split_to_array(t, E'\r\n|\r|\n') LOOP
        WHILE pg_catalog.length(line) > 200 LOOP
            -- the last space among the first 201 characters, if not too early
            cut := 202 - pg_catalog.strpos(pg_catalog.reverse(pg_catalog.left(line, 201)), ' ');
            IF cut > 201 OR cut < 100 THEN
                lines := lines || pg_catalog.left(line, 200);
                line := pg_catalog.substr(line, 201);
            ELSE
                lines := lines || pg_catalog.left(line, cut - 1);
                line := pg_catalog.substr(line, cut + 1);
            END IF;
        END LOOP;
        lines := lines || line;
    END LOOP;
    RETURN pg_catalog.array_to_string(lines, E'\r\n');
END
$$;

COMMENT ON FUNCTION @extschema@.incident__mail_lines(text) IS
'Internal: a mail body''s text with CRLF line ends and no line over 200 characters (SMTP refuses lines over 998 octets): a longer line is broken at its last space before that, or else at 200 characters.';

-- the mail of an event: the playbook's status-update template, or for a
-- resolution its executive-summary template; CRLF line ends
CREATE FUNCTION @extschema@.incident__notification_mail(inc @extschema@.incident, e @extschema@.incident_event,
                                                        c @extschema@.incident_channel, recipients text[])
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.concat_ws(E'\r\n',
        'From: ' || c.mail_from,
        -- one address a line: a hundred of them stay within SMTP's line length
        'To: ' || pg_catalog.array_to_string(recipients, E',\r\n '),
        'Subject: ' || @extschema@.incident__mail_header(
            CASE WHEN e.kind = 'resolved'
                 THEN pg_catalog.format('[%s] Incident Summary - %s', inc.severity, inc.title)
                 ELSE pg_catalog.format('[%s] %s %s: %s', inc.severity, inc.code,
                                        pg_catalog.replace(e.kind, '_', ' '), inc.title) END),
        'Date: ' || pg_catalog.to_char(e.at AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS') || ' +0000',
        pg_catalog.format('Message-ID: <incident-event-%s.%s@pg_incident>', e.id, c.id),
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        'X-Incident-Event: ' || e.id,
        '',
        -- (libcurl doubles a dot that starts a line, as SMTP asks)
        @extschema@.incident__mail_lines(
            CASE WHEN e.kind = 'resolved' THEN pg_catalog.concat_ws(E'\n',
                pg_catalog.format('Incident: %s - %s', inc.code, inc.title),
                'Start Time: ' || pg_catalog.to_char(inc.started_at AT TIME ZONE @extschema@.incident_timezone(), 'YYYY-MM-DD HH24:MI')
                    || ' ' || @extschema@.incident_timezone(),
                'Resolution Time: ' || pg_catalog.to_char(inc.resolved_at AT TIME ZONE @extschema@.incident_timezone(), 'YYYY-MM-DD HH24:MI')
                    || ' ' || @extschema@.incident_timezone(),
                'Duration: ' || pg_catalog.justify_interval(pg_catalog.date_trunc('minute', inc.resolved_at - inc.started_at)),
                'Impact: ' || coalesce(inc.description, inc.title),
                'Root Cause: ' || coalesce(inc.root_cause, 'to be found in the post-incident review'),
                -- the last ten updates, each cut to 500 characters: a mail of bounded size
                'Actions Taken: ' || coalesce((SELECT pg_catalog.string_agg(
                                                          CASE WHEN pg_catalog.length(u.message) > 500
                                                               THEN pg_catalog.left(u.message, 500) || '...' ELSE u.message END,
                                                          '; ' ORDER BY u.id)
                                                 FROM (SELECT x.id, x.message FROM @extschema@.incident_event x
                                                        WHERE x.incident_id = inc.id AND x.kind = 'status_update'
                                                        ORDER BY x.id DESC LIMIT 10) AS u)
                                              || coalesce((SELECT pg_catalog.format(' (and %s earlier updates)', pg_catalog.count(*) - 10)
                                                             FROM @extschema@.incident_event x
                                                            WHERE x.incident_id = inc.id AND x.kind = 'status_update'
                                                           HAVING pg_catalog.count(*) > 10), ''),
                                              'none recorded'),
                'Prevention: to be agreed in the post-incident review',
                '',
                'Next Steps:',
                '- Post-incident review scheduled for ' || coalesce(pg_catalog.to_char(inc.pir_due AT TIME ZONE @extschema@.incident_timezone(), 'YYYY-MM-DD'), 'a date to be set'),
                '- Action items will be tracked and reported',
                pg_catalog.replace(c.link_template, '{code}', inc.code))
            ELSE @extschema@.incident__status_update_text(inc, e, c.link_template, false) END),
        '')
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_mail(@extschema@.incident, @extschema@.incident_event, @extschema@.incident_channel, text[]) IS
'Internal: the mail (headers and plain-text body, CRLF line ends, lines of at most 200 characters, the last ten updates at most) of an event for an email channel: the playbook''s status-update template, or for a resolution its executive-summary template (start, resolution, duration, impact, root cause, actions taken, prevention, the review date). The subject cannot carry a header: control characters become spaces.';

------------------------------------------------------------------------------
-- Writing the outbox, in the event's transaction
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__notification_wake()
RETURNS void
AS 'MODULE_PATHNAME', 'incident__notification_wake'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION @extschema@.incident__notification_wake() IS
'Internal: when the current transaction commits, wakes the background worker to deliver what it wrote to the outbox and to look again at what falls due (nothing when the library is not preloaded).';

-- an event as a channel gets it: the body in the channel's format, its
-- content type, and a mail's envelope recipients
CREATE FUNCTION @extschema@.incident__notification_render(inc @extschema@.incident, e @extschema@.incident_event,
                                                          c @extschema@.incident_channel,
                                                          OUT body text, OUT content_type text, OUT recipients text[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF c.kind = 'email' THEN
        -- the channel's addresses in their order, then the person an
        -- escalation or reminder is for; each once
        recipients := ARRAY(SELECT r.a
                              FROM (SELECT DISTINCT ON (pg_catalog.lower(x.a)) x.a, x.o
                                      FROM pg_catalog.unnest(c.mail_to || (e.details->>'email')) WITH ORDINALITY AS x(a, o)
                                     WHERE @extschema@.incident__mail_address_ok(x.a)
                                     ORDER BY pg_catalog.lower(x.a), x.o) AS r
                             ORDER BY r.o);
        body := @extschema@.incident__notification_mail(inc, e, c, recipients);
        content_type := 'message/rfc822';
    ELSE
        body := CASE c.format WHEN 'slack' THEN @extschema@.incident__notification_slack(inc, e, c.link_template)::text
                              ELSE @extschema@.incident__notification_json(inc, e, c.link_template)::text END;
        content_type := 'application/json';
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_render(@extschema@.incident, @extschema@.incident_event, @extschema@.incident_channel) IS
'Internal: an event as the channel gets it: the json envelope, the slack text or the mail; its content type; and for a mail the envelope recipients (the channel''s mail_to in order, then the email of the person an escalation or reminder is for, each once).';

CREATE FUNCTION @extschema@.incident__notification_enqueue()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident;
    c @extschema@.incident_channel;
    r record;
BEGIN
    SELECT * INTO inc FROM @extschema@.incident i WHERE i.id = NEW.incident_id;
    FOR c IN SELECT * FROM @extschema@.incident_channel ch
              WHERE ch.enabled AND NEW.kind = ANY (ch.events) AND inc.severity <= ch.min_severity
                AND (ch.components IS NULL OR inc.component = ANY (ch.components))
              ORDER BY ch.id
                FOR SHARE OF ch    -- a channel saved meanwhile waits, and then renders these rows again
    LOOP
        r := @extschema@.incident__notification_render(inc, NEW, c);
        INSERT INTO @extschema@.incident_notification
            (channel_id, event_id, incident_id, event_kind, body, content_type, recipients, created_at, queued_at,
             next_attempt_at)
        VALUES (c.id, NEW.id, NEW.incident_id, NEW.kind, r.body, r.content_type, r.recipients,
                NEW.at, pg_catalog.clock_timestamp(), pg_catalog.clock_timestamp());
    END LOOP;
    -- the worker delivers, and looks again at what falls due (an
    -- acknowledgement stops escalation, an update moves its reminder)
    PERFORM @extschema@.incident__notification_wake();
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_enqueue() IS
'Internal trigger on incident_event: writes an outbox row, rendered in the channel''s format, for every enabled channel whose routing takes the event (its kind, min_severity, components), and wakes the worker at commit (to deliver them, and to look again at the escalations and reminders due).';

CREATE TRIGGER incident_event_notify
    AFTER INSERT ON @extschema@.incident_event
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__notification_enqueue();

------------------------------------------------------------------------------
-- The worker's side: claiming, and recording what became of a delivery
------------------------------------------------------------------------------

-- renders undelivered notifications again for their channel as it is now,
-- where it changed after they were rendered
CREATE FUNCTION @extschema@.incident__notification_rerender(ids bigint[])
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE @extschema@.incident_notification n
       SET body = r.body, content_type = r.content_type, recipients = r.recipients,
           rendered_at = pg_catalog.clock_timestamp()
      FROM @extschema@.incident_channel c, @extschema@.incident i, @extschema@.incident_event e,
           LATERAL @extschema@.incident__notification_render(i, e, c) AS r
     WHERE n.id = ANY (ids) AND n.state <> 'delivered' AND c.id = n.channel_id AND c.changed_at >= n.rendered_at
       AND i.id = n.incident_id AND e.id = n.event_id
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_rerender(bigint[]) IS
'Internal: renders these undelivered notifications again (body, content type, recipients) for their channel as it is now, where the channel changed after they were rendered: a replaced channel never gets a body in its old kind or format.';

-- the due deliveries, at most max_rows: for each channel and incident only
-- the oldest pending one, so that they arrive in order; per channel at most
-- per_channel in flight, so that a receiver that hangs holds only its share
-- of the worker's requests; and at most max_in_flight in all, so that the
-- probes keep the rest
CREATE FUNCTION @extschema@.incident__notification_claim(max_rows int, per_channel int, max_in_flight int,
                                                         OUT id bigint, OUT url text, OUT body text,
                                                         OUT content_type text, OUT secret text, OUT event_id bigint,
                                                         OUT timeout_ms int, OUT kind text, OUT mail_from text,
                                                         OUT recipients text[], OUT smtp_user text,
                                                         OUT smtp_password text)
RETURNS SETOF record
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH busy AS (
        SELECT f.channel_id, pg_catalog.count(*) AS n
          FROM @extschema@.incident_notification f
         WHERE f.state = 'pending' AND f.claimed_at IS NOT NULL
         GROUP BY f.channel_id),
    candidate AS (
        SELECT n.id, n.channel_id, n.next_attempt_at
          FROM @extschema@.incident_notification n
          JOIN @extschema@.incident_channel c ON c.id = n.channel_id
         WHERE n.state = 'pending' AND c.enabled
           AND n.next_attempt_at <= pg_catalog.clock_timestamp()
           AND (n.claimed_at IS NULL
                OR n.claimed_at < pg_catalog.clock_timestamp() - c.timeout - interval '1 minute')
           AND NOT EXISTS (SELECT FROM @extschema@.incident_notification b
                            WHERE b.channel_id = n.channel_id AND b.incident_id = n.incident_id
                              AND b.state = 'pending' AND b.id < n.id)
         ORDER BY n.next_attempt_at, n.id
         LIMIT max_rows * 4
           FOR UPDATE OF n SKIP LOCKED),
    due AS (
        SELECT r.id
          FROM (SELECT x.id, x.next_attempt_at,
                       pg_catalog.row_number() OVER (PARTITION BY x.channel_id ORDER BY x.next_attempt_at, x.id)
                       + coalesce(b.n, 0) AS place
                  FROM candidate x LEFT JOIN busy b ON b.channel_id = x.channel_id) r
         WHERE r.place <= per_channel
         ORDER BY r.next_attempt_at, r.id
         LIMIT GREATEST(LEAST(max_rows, max_in_flight - coalesce((SELECT pg_catalog.sum(b.n) FROM busy b), 0)::int), 0))
    UPDATE @extschema@.incident_notification n
       SET claimed_at = pg_catalog.clock_timestamp()
      FROM due, @extschema@.incident_channel c
     WHERE n.id = due.id AND c.id = n.channel_id
    RETURNING n.id, c.url, n.body, n.content_type, c.secret, n.event_id,
              (pg_catalog.date_part('epoch', c.timeout) * 1000)::int, c.kind, c.mail_from, n.recipients,
              c.smtp_user, c.smtp_password
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_claim(int, int, int) IS
'Internal, for the worker: claims at most max_rows due deliveries (the oldest pending one of each channel and incident, not in flight; at most per_channel of a channel and max_in_flight of all channels in flight) and returns what posting them takes.';

-- when the worker should look again: the earliest pending delivery not in flight
CREATE FUNCTION @extschema@.incident__notification_next()
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- the rows the claim could take: of an enabled channel, first of their
    -- incident's queue, not in flight (a row behind one that backs off, or
    -- of a disabled channel, is not due, however old)
    SELECT pg_catalog.min(n.next_attempt_at)
      FROM @extschema@.incident_notification n
      JOIN @extschema@.incident_channel c ON c.id = n.channel_id AND c.enabled
     WHERE n.state = 'pending' AND n.claimed_at IS NULL
       AND NOT EXISTS (SELECT FROM @extschema@.incident_notification b
                        WHERE b.channel_id = n.channel_id AND b.incident_id = n.incident_id
                          AND b.state = 'pending' AND b.id < n.id)
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_next() IS
'Internal, for the worker: the earliest next_attempt_at of a pending delivery the claim could take (an enabled channel''s, first of its incident''s queue, not in flight), or NULL.';

CREATE FUNCTION @extschema@.incident__notification_done(id bigint, ok boolean, status int, error text,
                                                        retry_after_s int, retry_max_ms int, dead_after_s int)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n @extschema@.incident_notification;
    now_ timestamptz := pg_catalog.clock_timestamp();
    delay double precision;
BEGIN
    SELECT * INTO n FROM @extschema@.incident_notification x WHERE x.id = incident__notification_done.id FOR UPDATE;
    IF NOT FOUND OR n.state <> 'pending' THEN
        RETURN NULL;
    END IF;
    n.attempts := n.attempts + 1;
    n.last_attempt_at := now_;
    n.last_status := nullif(status, 0);
    n.claimed_at := NULL;
    IF ok THEN
        n.state := 'delivered';
        n.delivered_at := now_;
        n.last_error := NULL;
    ELSE
        n.last_error := pg_catalog.left(error, 1000);
        -- 1 s, 2 s, 4 s ... up to retry_max, each between half and all of it
        delay := least(pg_catalog.power(2, least(n.attempts - 1, 30)) * 1000.0, retry_max_ms)
                 * (0.5 + pg_catalog.random() / 2);
        delay := greatest(delay, coalesce(retry_after_s, 0) * 1000.0);
        n.next_attempt_at := now_ + delay * interval '1 millisecond';
        IF dead_after_s > 0 AND n.next_attempt_at > n.queued_at + dead_after_s * interval '1 second' THEN
            n.state := 'dead';
        END IF;
    END IF;
    UPDATE @extschema@.incident_notification x
       SET state = n.state, attempts = n.attempts, last_attempt_at = n.last_attempt_at,
           last_status = n.last_status, last_error = n.last_error, claimed_at = NULL,
           delivered_at = n.delivered_at, next_attempt_at = n.next_attempt_at
     WHERE x.id = n.id;
    -- its channel was replaced while it was in flight: the next attempt is the new channel's
    IF NOT ok THEN
        PERFORM @extschema@.incident__notification_rerender(ARRAY[n.id]);
    END IF;
    RETURN n.state;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_done(bigint, boolean, int, text, int, int, int) IS
'Internal, for the worker: records one delivery attempt: delivered, or pending again after exponential back-off with jitter (1 s doubling up to retry_max_ms, at least retry_after_s), or dead once the next attempt would come more than dead_after_s after it was queued. Returns the new state.';

-- a crashed worker's claims: tried again at once
CREATE FUNCTION @extschema@.incident__notification_release()
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH released AS (
        UPDATE @extschema@.incident_notification SET claimed_at = NULL
         WHERE state = 'pending' AND claimed_at IS NOT NULL
        RETURNING id)
    SELECT @extschema@.incident__notification_rerender(pg_catalog.array_agg(id)) FROM released
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_release() IS
'Internal, for the worker when it starts: deliveries a predecessor left in flight count as not done (rendered again if their channel changed since).';

-- delivered rows older than the retention, in small batches; and the rows
-- of a dropped channel that a transaction running alongside the drop wrote
CREATE FUNCTION @extschema@.incident__notification_prune(older_than interval)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM @extschema@.incident_notification n
         WHERE n.id IN (SELECT x.id FROM @extschema@.incident_notification x
                         WHERE x.state = 'delivered' AND x.delivered_at < pg_catalog.clock_timestamp() - older_than
                         LIMIT 1000)
            OR n.id IN (SELECT x.id FROM @extschema@.incident_notification x
                         WHERE NOT EXISTS (SELECT FROM @extschema@.incident_channel c WHERE c.id = x.channel_id)
                         LIMIT 1000)
        RETURNING 1)
    SELECT pg_catalog.count(*) FROM gone
$$;

COMMENT ON FUNCTION @extschema@.incident__notification_prune(interval) IS
'Internal, for the worker: deletes up to 1000 delivered notifications delivered longer ago than older_than, and up to 1000 of channels that are gone (written by a transaction that ran alongside incident_channel_drop()); dead ones stay until retried or deleted by an admin.';

------------------------------------------------------------------------------
-- Escalations and reminders on time: the worker's sweep
------------------------------------------------------------------------------

-- whom a reminder of the incident is for: its communications lead, else its
-- commander, else whoever acknowledged it
CREATE FUNCTION @extschema@.incident__reminder_for(inc @extschema@.incident)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(inc.communications_lead, inc.incident_commander, inc.acknowledged_by)
$$;

COMMENT ON FUNCTION @extschema@.incident__reminder_for(@extschema@.incident) IS
'Internal: whom a reminder of the incident goes to: its communications lead, else its incident commander, else whoever acknowledged it (NULL: nobody named).';

-- one reminder event; the caller holds the incident's row lock
CREATE FUNCTION @extschema@.incident__remind(inc @extschema@.incident, reminder text, message text, due timestamptz,
                                             period int)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    who text := @extschema@.incident__reminder_for(inc);
    r @extschema@.incident_responder;
BEGIN
    SELECT * INTO r FROM @extschema@.incident_responder x WHERE x.name = who;
    PERFORM @extschema@.incident__event(inc, 'reminder', 'pg_incident',
        message || CASE WHEN who IS NOT NULL THEN pg_catalog.format(': reminding %s', who) ELSE '' END,
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'reminder', reminder, 'due', due, 'period', period, 'responder', who,
            'phone', r.phone, 'email', r.email, 'chat', r.chat)));
END
$$;

COMMENT ON FUNCTION @extschema@.incident__remind(@extschema@.incident, text, text, timestamptz, int) IS
'Internal: writes a reminder timeline event (details: reminder update_overdue or response_breached, the due time, the overdue period, the person reminded and their contacts); the caller holds the incident''s row lock.';

CREATE FUNCTION @extschema@.incident__sweep(OUT fired int, OUT next_at timestamptz, OUT held text[])
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- an incident locked by someone else's open transaction is skipped (and
-- named in held, which the worker logs), and no other lock may hold the
-- worker longer than this
SET lock_timeout = '2s'
AS $$
DECLARE
    now_ timestamptz := @extschema@.incident_now();
    x record;
    inc @extschema@.incident;
    every_ interval;
    period_ int;
    n int;
BEGIN
    fired := 0;
    held := '{}';

    -- escalation levels due: each fired once, through incident_escalate's code
    -- (the view only for the unacknowledged incidents whose severity escalates)
    FOR x IN SELECT d.code FROM @extschema@.incident__escalations_due() d WHERE d.due_at <= now_ LOOP
        BEGIN
            FOR n IN 1 .. 100 LOOP
                SELECT * INTO inc FROM @extschema@.incident i WHERE i.code = x.code FOR UPDATE SKIP LOCKED;
                IF NOT FOUND THEN
                    held := held || x.code;
                    EXIT;
                END IF;
                -- again under the lock: an acknowledgement or a person's escalation may have come first
                EXIT WHEN NOT EXISTS (SELECT FROM @extschema@.incident_escalations e
                                       WHERE e.code = x.code AND e.due_at <= now_ AND e.level IS NOT NULL);
                PERFORM @extschema@.incident__escalate(x.code, false);
                fired := fired + 1;
            END LOOP;
        EXCEPTION WHEN lock_not_available THEN
            held := held || x.code;     -- next time
        WHEN OTHERS THEN
            RAISE WARNING 'pg_incident: could not escalate incident "%": %', x.code, SQLERRM;
        END;
    END LOOP;

    -- response deadlines breached: once per incident
    FOR x IN SELECT i.id, i.code FROM @extschema@.incident i
              WHERE i.status = 'declared' AND i.response_due <= now_
                AND NOT EXISTS (SELECT FROM @extschema@.incident_event e
                                 WHERE e.incident_id = i.id AND e.kind = 'reminder'
                                   AND e.details->>'reminder' = 'response_breached') LOOP
        BEGIN
            SELECT * INTO inc FROM @extschema@.incident i WHERE i.id = x.id FOR UPDATE SKIP LOCKED;
            IF NOT FOUND THEN
                held := held || x.code;
                CONTINUE;
            END IF;
            CONTINUE WHEN inc.status <> 'declared' OR inc.response_due > now_
                OR EXISTS (SELECT FROM @extschema@.incident_event e
                            WHERE e.incident_id = inc.id AND e.kind = 'reminder'
                              AND e.details->>'reminder' = 'response_breached');
            PERFORM @extschema@.incident__remind(inc, 'response_breached',
                pg_catalog.format('response deadline breached: not acknowledged by %s',
                                  pg_catalog.to_char(inc.response_due AT TIME ZONE @extschema@.incident_timezone(), 'YYYY-MM-DD HH24:MI')),
                inc.response_due, 0);
            fired := fired + 1;
        EXCEPTION WHEN lock_not_available THEN
            held := held || x.code;
        WHEN OTHERS THEN
            RAISE WARNING 'pg_incident: could not record the breach of incident "%": %', x.code, SQLERRM;
        END;
    END LOOP;

    -- status updates overdue: one reminder per overdue period of the severity's cadence
    FOR x IN SELECT i.id, i.code FROM @extschema@.incident i
              WHERE i.status NOT IN ('declared', 'resolved', 'closed') AND i.next_update_due <= now_ LOOP
        BEGIN
            SELECT * INTO inc FROM @extschema@.incident i WHERE i.id = x.id FOR UPDATE SKIP LOCKED;
            IF NOT FOUND THEN
                held := held || x.code;
                CONTINUE;
            END IF;
            CONTINUE WHEN inc.status IN ('declared', 'resolved', 'closed') OR inc.next_update_due > now_;
            SELECT s.update_every INTO every_ FROM @extschema@.incident_severity s WHERE s.severity = inc.severity;
            period_ := pg_catalog.floor(pg_catalog.date_part('epoch', now_ - inc.next_update_due)
                                        / pg_catalog.date_part('epoch', every_))::int;
            CONTINUE WHEN EXISTS (SELECT FROM @extschema@.incident_event e
                                   WHERE e.incident_id = inc.id AND e.kind = 'reminder'
                                     AND e.details->>'reminder' = 'update_overdue'
                                     AND (e.details->>'due')::timestamptz = inc.next_update_due
                                     AND (e.details->>'period')::int = period_);
            PERFORM @extschema@.incident__remind(inc, 'update_overdue',
                pg_catalog.format('status update overdue since %s (every %s)',
                                  pg_catalog.to_char(inc.next_update_due AT TIME ZONE @extschema@.incident_timezone(), 'YYYY-MM-DD HH24:MI'),
                                  every_),
                inc.next_update_due, period_);
            fired := fired + 1;
        EXCEPTION WHEN lock_not_available THEN
            held := held || x.code;
        WHEN OTHERS THEN
            RAISE WARNING 'pg_incident: could not remind incident "%": %', x.code, SQLERRM;
        END;
    END LOOP;

    -- when to look again
    now_ := @extschema@.incident_now();
    SELECT pg_catalog.min(t) INTO next_at FROM (
        SELECT d.due_at AS t FROM @extschema@.incident__escalations_due() d
        UNION ALL
        -- a breach not yet due (one due now was reminded above, or is retried within 5 s)
        (SELECT i.response_due FROM @extschema@.incident i
          WHERE i.status = 'declared' AND i.response_due > now_
          ORDER BY i.response_due LIMIT 1)
        UNION ALL
        SELECT CASE WHEN i.next_update_due > now_ THEN i.next_update_due
                    ELSE i.next_update_due + s.update_every
                         * (pg_catalog.floor(pg_catalog.date_part('epoch', now_ - i.next_update_due)
                                             / pg_catalog.date_part('epoch', s.update_every)) + 1) END
          FROM @extschema@.incident i JOIN @extschema@.incident_severity s USING (severity)
         WHERE i.status NOT IN ('declared', 'resolved', 'closed') AND i.next_update_due IS NOT NULL) d;
END
$$;

-- what the sweep looks for among many incidents, without reading them all
CREATE INDEX incident_declared_response_idx ON @extschema@.incident (response_due) WHERE status = 'declared';
CREATE INDEX incident_update_due_idx ON @extschema@.incident (next_update_due)
    WHERE status NOT IN ('declared', 'resolved', 'closed');

COMMENT ON FUNCTION @extschema@.incident__sweep() IS
'Internal, for the worker: fires what is due by incident_now(): each escalation level of an unacknowledged incident (through the code of incident_escalate, once per step), a reminder when an incident''s response deadline passes unacknowledged (once), and a reminder when a status update is overdue (once per period of the severity''s cadence) to its communications lead, commander or acknowledger. Skips an incident someone holds locked, and names it in held. Returns how many it fired, when the next is due and the incidents it had to skip.';

------------------------------------------------------------------------------
-- What users call
------------------------------------------------------------------------------

-- writes a channel, new or replacing the one of its name; what it has not
-- sent yet is rendered again for it as it is now (its format, its link, its
-- recipients), so that no mail goes to a webhook or json to Slack
CREATE FUNCTION @extschema@.incident__channel_save(c @extschema@.incident_channel)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    saved @extschema@.incident_channel;
BEGIN
    INSERT INTO @extschema@.incident_channel AS t
        (name, kind, url, format, min_severity, secret, events, components, link_template, timeout, enabled,
         created_by, mail_from, mail_to, smtp_user, smtp_password)
    VALUES (c.name, c.kind, c.url, c.format, c.min_severity, c.secret,
            coalesce(c.events, @extschema@.incident__channel_default_events()), c.components, c.link_template,
            c.timeout, c.enabled, @extschema@.incident_invoker(), c.mail_from, c.mail_to, c.smtp_user, c.smtp_password)
    ON CONFLICT ON CONSTRAINT incident_channel_name_key DO UPDATE
       SET kind = excluded.kind, url = excluded.url, format = excluded.format, min_severity = excluded.min_severity,
           secret = excluded.secret, events = excluded.events, components = excluded.components,
           link_template = excluded.link_template, timeout = excluded.timeout, enabled = excluded.enabled,
           created_by = excluded.created_by, mail_from = excluded.mail_from, mail_to = excluded.mail_to,
           smtp_user = excluded.smtp_user, smtp_password = excluded.smtp_password,
           changed_at = pg_catalog.clock_timestamp()
    RETURNING t.* INTO saved;
    -- not the ones in flight: the worker has them as they were, and renders
    -- them again if the attempt fails (incident__notification_done)
    PERFORM @extschema@.incident__notification_rerender(pg_catalog.array_agg(n.id))
       FROM @extschema@.incident_notification n
      WHERE n.channel_id = saved.id AND n.state IN ('pending', 'dead') AND n.claimed_at IS NULL;
    RETURN saved.id;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__channel_save(@extschema@.incident_channel) IS
'Internal: writes the channel (new, or replacing the one of its name), events defaulting to incident__channel_default_events(), and renders its undelivered notifications again for it as it now is. Returns its id.';

CREATE FUNCTION @extschema@.incident_channel_webhook(name text, url text, format text DEFAULT 'json',
                                                     min_severity text DEFAULT 'P4', secret text DEFAULT NULL,
                                                     events text[] DEFAULT NULL, components text[] DEFAULT NULL,
                                                     link_template text DEFAULT NULL,
                                                     timeout interval DEFAULT '10 seconds',
                                                     enabled boolean DEFAULT true)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c @extschema@.incident_channel;
BEGIN
    c.name := @extschema@.incident__require_text(name, 'channel name', 100);
    IF coalesce(pg_catalog.btrim(url), '') = '' THEN
        RAISE EXCEPTION 'the url of channel "%" is empty', @extschema@.incident__quote(c.name)
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the webhook''s http:// or https:// URL, such as ''https://hooks.example/incidents''.';
    END IF;
    IF pg_catalog.substring(pg_catalog.btrim(url), '^[A-Za-z]+://([^/?#]*)') LIKE '%@%' THEN
        RAISE EXCEPTION 'the url of channel "%" holds a user name or password', @extschema@.incident__quote(c.name)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the webhook''s URL without credentials; to prove the sender to the receiver, give a secret, which signs each body.';
    END IF;
    c.kind := 'webhook';
    c.url := pg_catalog.btrim(url);
    c.format := pg_catalog.lower(pg_catalog.btrim(format));
    c.min_severity := @extschema@.incident_severity_normalize(min_severity);
    c.secret := secret;
    c.events := events;
    c.components := components;
    c.link_template := link_template;
    c.timeout := timeout;
    c.enabled := enabled;
    RETURN @extschema@.incident__channel_save(c);
END
$$;

COMMENT ON FUNCTION @extschema@.incident_channel_webhook(text, text, text, text, text, text[], text[], text, interval, boolean) IS
'Creates or replaces the webhook channel of this name: the worker posts each timeline event it routes (events, of incidents of min_severity or worse, of components) to url, as the json envelope or a slack text, signed with secret when given. Returns the channel''s id.';

CREATE FUNCTION @extschema@.incident_channel_email(name text, smtp_url text, mail_from text, mail_to text[],
                                                   min_severity text DEFAULT 'P2', events text[] DEFAULT NULL,
                                                   components text[] DEFAULT NULL, link_template text DEFAULT NULL,
                                                   smtp_user text DEFAULT NULL, smtp_password text DEFAULT NULL,
                                                   timeout interval DEFAULT '30 seconds',
                                                   enabled boolean DEFAULT true)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c @extschema@.incident_channel;
BEGIN
    c.name := @extschema@.incident__require_text(name, 'channel name', 100);
    IF coalesce(pg_catalog.btrim(smtp_url), '') = '' THEN
        RAISE EXCEPTION 'the smtp_url of channel "%" is empty', @extschema@.incident__quote(c.name)
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the mail relay''s smtp:// or smtps:// URL, such as ''smtp://mail.example:587''.';
    END IF;
    IF pg_catalog.substring(pg_catalog.btrim(smtp_url), '^[A-Za-z]+://([^/?#]*)') LIKE '%@%' THEN
        RAISE EXCEPTION 'the smtp_url of channel "%" holds a user name or password', @extschema@.incident__quote(c.name)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the login as smtp_user and smtp_password, which only incident_admin reads.';
    END IF;
    IF mail_from IS NULL OR mail_to IS NULL THEN
        RAISE EXCEPTION 'channel "%" needs mail_from and mail_to', @extschema@.incident__quote(c.name)
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the sender, such as ''incidents@example.com'', and the recipients, such as ''{oncall@example.com}''.';
    END IF;
    c.kind := 'email';
    c.url := pg_catalog.btrim(smtp_url);
    c.format := 'text';
    c.min_severity := @extschema@.incident_severity_normalize(min_severity);
    c.events := events;
    c.components := components;
    c.link_template := link_template;
    c.timeout := timeout;
    c.enabled := enabled;
    c.mail_from := pg_catalog.btrim(mail_from);
    c.mail_to := ARRAY(SELECT pg_catalog.btrim(a) FROM pg_catalog.unnest(mail_to) WITH ORDINALITY AS m(a, o) ORDER BY o);
    c.smtp_user := smtp_user;
    c.smtp_password := smtp_password;
    RETURN @extschema@.incident__channel_save(c);
END
$$;

COMMENT ON FUNCTION @extschema@.incident_channel_email(text, text, text, text[], text, text[], text[], text, text, text, interval, boolean) IS
'Creates or replaces the email channel of this name: the worker mails each timeline event it routes (events, of incidents of min_severity or worse, default P2, of components) from mail_from to mail_to (and to the person an escalation or reminder is for) through the SMTP relay at smtp_url (smtps:// for TLS, or STARTTLS, required when a password is given), logging in as smtp_user when given. Plain text in the playbook''s status-update shape; a resolution in its executive-summary shape. Returns the channel''s id.';

CREATE FUNCTION @extschema@.incident_channel_drop(name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gone_id int;
BEGIN
    DELETE FROM @extschema@.incident_channel c WHERE c.name = incident_channel_drop.name RETURNING c.id INTO gone_id;
    IF gone_id IS NULL THEN
        RAISE EXCEPTION 'channel "%" does not exist', @extschema@.incident__quote(name)
            USING ERRCODE = 'no_data_found',
                  HINT = 'See incident_channels for the channels.';
    END IF;
    DELETE FROM @extschema@.incident_notification n WHERE n.channel_id = gone_id;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_channel_drop(text) IS
'Drops the channel with its notifications, delivered or not.';

CREATE FUNCTION @extschema@.incident_notification_retry(id bigint)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n @extschema@.incident_notification;
BEGIN
    SELECT * INTO n FROM @extschema@.incident_notification x WHERE x.id = incident_notification_retry.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'notification % does not exist', coalesce(id::text, 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = 'See incident_notification_dead for the deliveries that failed.';
    END IF;
    IF n.state = 'delivered' THEN
        RAISE EXCEPTION 'notification % was delivered already', n.id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Only a dead or pending notification is retried.';
    END IF;
    -- in flight: queued again now, it would go twice (a stale claim, a
    -- crashed worker's, is the worker's to take again, and may be retried)
    IF n.claimed_at IS NOT NULL AND n.claimed_at >= pg_catalog.clock_timestamp()
           - coalesce((SELECT c.timeout FROM @extschema@.incident_channel c WHERE c.id = n.channel_id), interval '0')
           - interval '1 minute' THEN
        RAISE EXCEPTION 'notification % is being delivered', n.id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Wait for its outcome in incident_notifications; the worker retries a failed delivery by itself.';
    END IF;
    UPDATE @extschema@.incident_notification x
       SET state = 'pending', next_attempt_at = pg_catalog.clock_timestamp(), claimed_at = NULL,
           queued_at = pg_catalog.clock_timestamp()
     WHERE x.id = n.id;
    PERFORM @extschema@.incident__notification_wake();
    RETURN 'pending';
END
$$;

COMMENT ON FUNCTION @extschema@.incident_notification_retry(bigint) IS
'Queues a dead (or pending) notification again, due now; the age after which it is dead again counts from now.';

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------

CREATE VIEW @extschema@.incident_channels AS
SELECT c.name, c.kind, c.format, c.min_severity, c.events, c.components, c.enabled,
       c.secret IS NOT NULL AS signed,
       (SELECT pg_catalog.count(*) FROM @extschema@.incident_notification n
         WHERE n.channel_id = c.id AND n.state = 'pending') AS pending,
       (SELECT pg_catalog.count(*) FROM @extschema@.incident_notification n
         WHERE n.channel_id = c.id AND n.state = 'dead') AS dead
  FROM @extschema@.incident_channel c
 ORDER BY c.name;

COMMENT ON VIEW @extschema@.incident_channels IS
'One row per channel, without its url and secret: kind, format, routing, whether it signs, and how many deliveries are pending and dead.';
COMMENT ON COLUMN @extschema@.incident_channels.kind IS 'webhook (posted over HTTP) or email (sent over SMTP).';
COMMENT ON COLUMN @extschema@.incident_channels.signed IS 'True when the channel has a secret, which signs each webhook body (X-Incident-Signature).';
COMMENT ON COLUMN @extschema@.incident_channels.pending IS 'Deliveries waiting for their first attempt or a retry, or in flight.';
COMMENT ON COLUMN @extschema@.incident_channels.dead IS 'Deliveries that kept failing past pg_incident.notification_dead_after (see incident_notification_dead).';

CREATE VIEW @extschema@.incident_notifications AS
SELECT n.id,
       c.name AS channel,
       i.code AS incident,
       n.event_id,
       n.event_kind,
       n.state,
       n.attempts,
       n.created_at,
       n.next_attempt_at,
       n.claimed_at IS NOT NULL AS in_flight,
       n.last_attempt_at,
       n.last_status,
       n.last_error,
       n.delivered_at,
       n.delivered_at - n.created_at AS latency
  FROM @extschema@.incident_notification n
  JOIN @extschema@.incident_channel c ON c.id = n.channel_id
  JOIN @extschema@.incident i ON i.id = n.incident_id
 ORDER BY n.id;

COMMENT ON VIEW @extschema@.incident_notifications IS
'Every delivery: channel, incident, event, state (pending, delivered, dead), attempts, when it is tried next, whether it is in flight, the last HTTP status and error, and the latency from the event to delivery.';
COMMENT ON COLUMN @extschema@.incident_notifications.event_id IS 'The timeline event delivered, also the Idempotency-Key header a receiver dedups on.';
COMMENT ON COLUMN @extschema@.incident_notifications.state IS 'pending (waiting, retrying or in flight), delivered (a 2xx answer or the relay''s 250) or dead (failing past pg_incident.notification_dead_after).';
COMMENT ON COLUMN @extschema@.incident_notifications.attempts IS 'Attempts whose outcome was recorded; a post in flight is not counted yet.';
COMMENT ON COLUMN @extschema@.incident_notifications.created_at IS 'When the event happened.';
COMMENT ON COLUMN @extschema@.incident_notifications.next_attempt_at IS 'When the worker tries next: at once for a new one, after back-off with jitter (or the receiver''s Retry-After) for a retry.';
COMMENT ON COLUMN @extschema@.incident_notifications.in_flight IS 'True while the worker has it claimed: posted or mailed, the outcome not recorded yet.';
COMMENT ON COLUMN @extschema@.incident_notifications.last_status IS 'The HTTP status (or SMTP reply code) of the last attempt; NULL when no answer came.';
COMMENT ON COLUMN @extschema@.incident_notifications.last_error IS 'Why the last attempt failed: the failure kind (dns, connect, tls, timeout, ...) and its message, or the HTTP status and the start of the answer; never a secret.';
COMMENT ON COLUMN @extschema@.incident_notifications.latency IS 'From the event to its delivery.';

CREATE VIEW @extschema@.incident_notification_dead AS
SELECT id, channel, incident, event_id, event_kind, attempts, created_at, last_attempt_at, last_status, last_error
  FROM @extschema@.incident_notifications
 WHERE state = 'dead';

COMMENT ON VIEW @extschema@.incident_notification_dead IS
'The deliveries that kept failing until pg_incident.notification_dead_after passed, with their last error; incident_notification_retry(id) queues one again.';
COMMENT ON COLUMN @extschema@.incident_notification_dead.last_error IS 'Why the last attempt failed (see incident_notifications.last_error).';

------------------------------------------------------------------------------
-- pg_dump and privileges
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_channel', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_channel_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_notification', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_notification_id_seq', '');

-- a channel's url (a Slack webhook's is its token), secret and SMTP login are credentials
GRANT SELECT (id, name, kind, format, min_severity, events, components, link_template, timeout, enabled, created_by,
              mail_from, mail_to)
   ON @extschema@.incident_channel TO incident_viewer;
GRANT SELECT ON @extschema@.incident_channel TO incident_admin;
-- the outbox: an admin reads the rendered bodies and deletes the dead letters it gives up on
GRANT SELECT, DELETE ON @extschema@.incident_notification TO incident_admin;
GRANT SELECT ON @extschema@.incident_channels, @extschema@.incident_notifications,
                @extschema@.incident_notification_dead
   TO incident_viewer;
GRANT EXECUTE ON FUNCTION
    @extschema@.incident_channel_webhook(text, text, text, text, text, text[], text[], text, interval, boolean),
    @extschema@.incident_channel_email(text, text, text, text[], text, text[], text[], text, text, text, interval, boolean),
    @extschema@.incident_channel_drop(text),
    @extschema@.incident_notification_retry(bigint)
   TO incident_admin;
