/* extension/pg_incident--0.1.0--0.2.0.sql: the upgrade from 0.1.0 to 0.2.0 as released; frozen, never edited (see extension/frozen.sha256) */
\echo Use "ALTER EXTENSION pg_incident UPDATE TO '0.2.0'" to load this file. \quit

-- from extension/0.2.0/00_base.sql
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

-- Calendars and rotations name time zones; both check them here.

CREATE FUNCTION @extschema@.incident_timezone_valid(time_zone text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'incident_timezone_valid'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_timezone_valid(text) IS
'Whether PostgreSQL knows the time zone name (as in pg_timezone_names, e.g. Europe/Berlin).';

CREATE FUNCTION @extschema@.incident__require_timezone(time_zone text, what text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF time_zone IS NULL THEN
        RAISE EXCEPTION 'time zone of % must not be null', what
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a name from pg_timezone_names, such as "Europe/Berlin" or "UTC".';
    END IF;
    IF NOT @extschema@.incident_timezone_valid(time_zone) THEN
        RAISE EXCEPTION 'invalid time zone "%" for %', time_zone, what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a name from pg_timezone_names, such as "Europe/Berlin" or "UTC".';
    END IF;
    RETURN time_zone;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__require_timezone(text, text) IS
'Internal: the time zone name, or an error naming it and what it was given for (a calendar, a rotation).';

REVOKE ALL ON FUNCTION @extschema@.incident__require_timezone(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.incident_timezone_valid(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.incident_timezone_valid(text) TO incident_viewer;

-- Modules that compile a configuration table once per backend (the
-- classifier's rules, the calendars) learn of its changes through this
-- statement trigger.

CREATE FUNCTION @extschema@.incident__config_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'incident__config_changed'
LANGUAGE C;

COMMENT ON FUNCTION @extschema@.incident__config_changed() IS
'Internal trigger: after a change to a configuration table that backends cache (classification rules, calendars), tells every backend (this one at the end of the command, the others when the change commits) to read it again.';

REVOKE ALL ON FUNCTION @extschema@.incident__config_changed() FROM PUBLIC;

-- from extension/0.2.0/10_classify.sql
/* extension/0.2.0/10_classify.sql: severity classification.
 *
 * incident_classify(text) gives the severity (P1..P4) of an incident from
 * what a person or a probe writes about it, by the first enabled rule of
 * incident_classify_rule (in priority order) whose case-insensitive regular
 * expression matches; incident_classify(jsonb) gives it from facts such as
 * {"page_load_s": 12}. The rules are compiled once per backend by
 * src/classify.c and compiled again after any change to the table.
 * incident_declare(NULL or 'auto', ...) classifies the title and
 * description and records which rule decided.
 */

------------------------------------------------------------------------------
-- The rules
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_classify_rule (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    priority    int NOT NULL,
    pattern     text NOT NULL,
    severity    text NOT NULL CHECK (severity IN ('P1', 'P2', 'P3', 'P4')),
    category    text NOT NULL CHECK (category ~ '^[a-z][a-z0-9_]*$'),
    enabled     boolean NOT NULL DEFAULT true,
    note        text,
    is_default  boolean NOT NULL DEFAULT false
);

CREATE INDEX incident_classify_rule_order_idx ON @extschema@.incident_classify_rule (priority, name);

COMMENT ON TABLE @extschema@.incident_classify_rule IS
'Rules of incident_classify(text): the first enabled rule, by priority and then name, whose pattern matches the text gives its severity and category. Seeded from the playbook''s severity table; editable by incident_admin (disable a seeded rule rather than deleting it, so that pg_dump keeps the choice).';
COMMENT ON COLUMN @extschema@.incident_classify_rule.name IS 'The rule''s key, shown by incident_classify_explain() and recorded when a declaration is classified: lower-case letters, digits and underscores.';
COMMENT ON COLUMN @extschema@.incident_classify_rule.priority IS 'Order of evaluation: rules with a lower number are tried first, and the first that matches decides (ties are broken by name).';
COMMENT ON COLUMN @extschema@.incident_classify_rule.pattern IS 'A PostgreSQL advanced regular expression, matched case-insensitively anywhere in the text (as the ~* operator does).';
COMMENT ON COLUMN @extschema@.incident_classify_rule.severity IS 'The severity a match gives: P1..P4 (critical/high/medium/low are accepted and stored as P1..P4).';
COMMENT ON COLUMN @extschema@.incident_classify_rule.category IS 'What kind of incident a match is, such as outage, database, security, payment or cosmetic: lower-case letters, digits and underscores.';
COMMENT ON COLUMN @extschema@.incident_classify_rule.enabled IS 'Whether the classifier uses the rule.';
COMMENT ON COLUMN @extschema@.incident_classify_rule.note IS 'Why the rule exists: the playbook examples it covers.';
COMMENT ON COLUMN @extschema@.incident_classify_rule.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';

-- A rule is checked as it is written: a bad pattern or severity is refused
-- with the rule's name and a hint, rather than failing every classification
-- later.
CREATE FUNCTION @extschema@.incident__classify_rule_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text;
BEGIN
    IF NEW.name IS NULL OR NEW.name !~ '^[a-z][a-z0-9_]*$' THEN
        RAISE EXCEPTION 'invalid classification rule name "%"', coalesce(NEW.name, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A rule name has lower-case letters, digits and underscores and starts with a letter, such as "database_down".';
    END IF;
    IF NEW.severity IS NULL THEN
        RAISE EXCEPTION 'severity of classification rule "%" must not be null', NEW.name
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a severity: P1, P2, P3 or P4, or its name (see incident_severity).';
    END IF;
    BEGIN
        NEW.severity := @extschema@.incident_severity_normalize(NEW.severity);
    EXCEPTION WHEN invalid_parameter_value THEN
        GET STACKED DIAGNOSTICS problem = PG_EXCEPTION_HINT;
        RAISE EXCEPTION 'invalid severity "%" in classification rule "%"', NEW.severity, NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = problem;
    END;
    IF NEW.category IS NOT NULL THEN
        NEW.category := pg_catalog.lower(pg_catalog.btrim(NEW.category));
        IF NEW.category !~ '^[a-z][a-z0-9_]*$' THEN
            RAISE EXCEPTION 'invalid category "%" in classification rule "%"', NEW.category, NEW.name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A category has lower-case letters, digits and underscores and starts with a letter, such as "database" or "feature_request".';
        END IF;
    END IF;
    IF NEW.pattern IS NULL THEN
        RAISE EXCEPTION 'pattern of classification rule "%" must not be null', NEW.name
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a regular expression; ''^'' matches every text.';
    END IF;
    BEGIN
        PERFORM '' OPERATOR(pg_catalog.~*) NEW.pattern;
    EXCEPTION WHEN invalid_regular_expression THEN
        GET STACKED DIAGNOSTICS problem = MESSAGE_TEXT;
        RAISE EXCEPTION 'invalid pattern "%" in classification rule "%"', NEW.pattern, NEW.name
            USING ERRCODE = 'invalid_regular_expression',
                  DETAIL = pg_catalog.format('PostgreSQL says: %s.', problem),
                  HINT = 'The pattern is a PostgreSQL advanced regular expression, matched case-insensitively; test it with SELECT ''some text'' ~* ''pattern''.';
    END;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__classify_rule_check() IS
'Internal trigger: refuses a classification rule with an invalid name, pattern, severity or category, naming the rule; stores severities as P1..P4 and categories in lower case.';

-- Triggers of the same kind fire in name order: check, then edited/restore.
CREATE TRIGGER incident_classify_rule_check
    BEFORE INSERT OR UPDATE ON @extschema@.incident_classify_rule
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__classify_rule_check();
CREATE TRIGGER incident_classify_rule_edited
    BEFORE UPDATE ON @extschema@.incident_classify_rule
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__mark_edited();
CREATE TRIGGER incident_classify_rule_restore
    BEFORE INSERT ON @extschema@.incident_classify_rule
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__replace_default('name');
CREATE TRIGGER incident_classify_rule_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.incident_classify_rule
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__config_changed();

-- The seeded rules. The first match decides, so the order carries meaning:
--  100-199  P1: security, payment, database, whole-site outage, admin panel down
--  200-299  downgrading qualifiers that must win over the P2 rules below:
--           non-critical or minor features, one user's account, display
--           issues (P3), documentation (P4)
--  300-399  P2: major functionality, performance over 10 s, partial admin
--           panel, e-mail/WhatsApp integrations, availability status
--  400-499  P3: moderate slowness (3-10 s), generic breakage
--  500-599  P4: cosmetic issues, UI nits, feature requests
--  10000    the catch-all: text that no rule recognises is P3 (see docs)
-- The P2 partial-admin rule runs before the P1 admin rule it qualifies.
INSERT INTO @extschema@.incident_classify_rule (name, priority, pattern, severity, category, note, is_default)
VALUES
    ('security_breach', 100,
     $re$\m((security|data|privacy) (breach|incident)|hack(ed|ers?)|compromised?|intrusion|intruders?|unauthori[sz]ed (access|logins?|changes?|users?|admin)|ransomware|malware|defaced|phishing|sql ?injection|credential stuffing|brute[- ]?force|suspicious (logins?|activity|access))\M$re$,
     'P1', 'security', 'Playbook P1: security breach or data leak.', true),
    ('data_leak', 110,
     $re$\mdata leak|\m(data|records|credentials?|passwords?|api ?keys?|secrets?|tokens?|pii|personal (data|information|details)|card (numbers|details)|e-?mail addresses)\W+(\w+\W+){0,3}?(leak(ed|ing|s)?|expos(ed|ing)|stolen|dumped|published|publicly (visible|accessible|available)|visible to (anyone|everyone|other (users|customers)))\M|\m(leak(ed|ing)?|expos(ed|ing)|stole) (\w+ ){0,3}?(data|records|credentials|passwords|api ?keys|secrets|tokens|pii)\M|\mpasswords? in (plain ?text|clear ?text|the logs)$re$,
     'P1', 'security', 'Playbook P1: security breach or data leak.', true),
    ('payment_failure', 120,
     $re$\m(payments?|checkout|check-out|billing|card payments?|card transactions?|payment transactions?|credit cards?|stripe|paypal|mada|apple pay|payment (gateway|provider|system))\M(\W+\w+){0,4}?\W+(fail(s|ed|ing|ures?)?|down|broken|errors?|erroring|declin(ed|ing)|reject(ed|ing)|(not|n't)\W+(\w+\W+)?(working|going through|processing|processed|completing|possible)|stuck|timing out|time-?outs?|unavailable|outage)\M|\m(can'?t|cannot|unable to|nobody can|no one can) (\w+ ){0,2}?(pay|check ?out|complete (their |the |a )?(purchase|order|checkout|payment)|place (an |their )?orders?)\M$re$,
     'P1', 'payment', 'Playbook P1: payment system failure.', true),
    ('database_down', 130,
     $re$\m(database|db|postgres(ql)?|mysql|supabase|primary (db|database))\M(\W+\w+){0,3}?\W+(down|unavailable|unreachable|offline|(not|n't)\W+(responding|reachable|available|accepting connections|up|running)|crash(ed|ing|es)?|refus(ed|es|ing)|out of (connections|disk|space)|full|corrupt(ed|ion)?|dead|gone|fail(s|ed|ing|ure)?|timing out|lost|outage)\M|\m(can'?t|cannot|could ?n[o']t|unable to|failed to|failing to|fails to) (re)?connect (to )?(the )?(database|db|postgres(ql)?|supabase)\M|\m(too many (database |db )?connections|connection pool (is )?(exhausted|full)|remaining connection slots are reserved)$re$,
     'P1', 'database', 'Playbook P1: database unavailable.', true),
    ('site_outage', 140,
     $re$\m(complete|total|full|entire|whole|major|site-?wide|global|production|prod|website|site) (\w+ )?(outage|downtime|blackout)\M|\m(web ?site|site|home ?page|storefront|web ?app|app|application|platform|production|prod|front-?end|everything)\M(\s+(is|are|was|were|has|have|had|been|went|gone|goes|got|completely|totally|fully|entirely|now|just|still|all|currently|seems|looks|to|be))*\s+(down|offline|unreachable|unavailable|inaccessible|dead|crash(ed|ing)?|(not|n't)\s+(loading|responding|reachable|available|up|opening|accessible|working))\M|\m(5\d\d|5xx|internal server errors?|bad gateway|gateway time-?outs?|service unavailable)\M.*\m(every(one|body|where| user| page| request| visitor| customer)?|all (users|customers|pages|requests|visitors|routes)|whole site|entire site|site-?wide)\M|\m(every(one|body| user| page| request| visitor| customer)?|all (users|customers|pages|requests|visitors|routes)|whole site|entire site|site-?wide)\M.*\m(5\d\d|5xx|internal server errors?|bad gateway|gateway time-?outs?|service unavailable)\M|\m(nobody|no one|no-one|everyone|everybody|users|customers|visitors) (can'?t|cannot|(is|are) unable to|unable to) (access|reach|load|open|get to|visit|use) (the |our )?(web ?site|site|home ?page|storefront|app|platform|shop)\M|\mdns\M(\W+\w+){0,3}?\W+(not resolving|fail\w*|down|broken|nxdomain|expired)|\m(ssl|tls|https)? ?certificate (has )?expired|\mdomain (has )?expired$re$,
     'P1', 'outage', 'Playbook P1: complete website outage.', true),
    ('admin_panel_partial', 150,
     $re$\m(partial(ly)?|some|certain|a few|several|intermittent(ly)?|half|parts? of( the)?)\s+(\w+\s+){0,2}?(admin|back ?office|cms)\M|\m(admin|back ?office|cms)\M(\W+\w+){0,4}?\W+(partial(ly)?|intermittent(ly)?|sometimes|half|some (pages|sections|tabs|features|users))\M$re$,
     'P2', 'admin_panel', 'Playbook P2: admin panel partially accessible. Runs before admin_panel_down.', true),
    ('admin_panel_down', 160,
     $re$\m(admin|back ?office|cms)\M(\s+(panel|dashboard|area|portal|console|site|page|pages|ui|interface|login))?(\s+(is|are|was|were|has|have|had|been|went|gone|goes|got|completely|totally|fully|entirely|now|just|still|all|currently|seems|looks|to|be))*\s+(down|unavailable|unreachable|offline|inaccessible|dead|crash(ed|ing)?|blank|(not|n't)\s+(loading|accessible|reachable|available|responding|working|opening))\M|\m(can'?t|cannot|unable to|nobody can|no one can|locked out of) (\w+ ){0,2}?(access|reach|open|load|log ?in(to)?|sign ?in(to)?|get into|use)? ?(the |our )?(admin|back ?office|cms)\M$re$,
     'P1', 'admin_panel', 'Playbook P1: admin panel completely inaccessible.', true),
    ('minor_functionality', 200,
     $re$\m(minor|small|non-?critical|non-?essential|secondary|low[- ]impact|edge[- ]case)\W+(\w+\W+){0,2}?(functionality|features?|functions?|bugs?|issues?|problems?|glitch(es)?|errors?|breakage|defects?)\M|\mnon-?critical\M$re$,
     'P3', 'functionality', 'Playbook P3: minor functionality issues, non-critical features not working.', true),
    ('individual_account', 210,
     $re$\m(one|a|an|single|individual|particular|specific|certain|this|1) (user|customer|client|member|person|buyer|supplier)('s|s')?\W+(\w+\W+){0,5}?(account|password|login|log ?in|sign ?in|profile|locked|reset|access|verify|verification|2fa|mfa|otp|can'?t|cannot|unable|issues?|problems?|errors?)\M|\mindividual (user )?accounts?\M|\m(account|profile|password reset) (issues?|problems?|locked)|locked out of (his|her|their|my|an?) accounts?$re$,
     'P3', 'account', 'Playbook P3: individual user account issues.', true),
    ('display_issue', 220,
     $re$\m(display(ing)?|rendering|renders?|layout|images?|pictures?|photos?|thumbnails?|charts?|graphs?)\W+(\w+\W+){0,3}?(issues?|problems?|broken|glitch(es|y)?|bugs?|wrong|distorted|overlapping|(not|n't)\W+(showing|displaying|loading|appearing|rendering))\M|\mcosmetic display|\m(broken|missing) (images?|pictures?|photos?|layout)\M|\m(layout|page|site|table) (\w+ )?(is )?(broken|messed up) on (mobile|tablet|safari|firefox|chrome|ios|android)$re$,
     'P3', 'display', 'Playbook P3: cosmetic display issues (a display problem; plain cosmetic issues are P4).', true),
    ('performance_severe', 300,
     $re$(>|more than|over|above|exceeds?|exceeding)\s*10(\.0+)?\s*-?\s*(s|secs?|seconds?)\M|\m(1[1-9]|[2-9][0-9]|[0-9][0-9][0-9]+|10\.[0-9]*[1-9])\s*-?\s*(s|secs?|seconds?)\M|\m[0-9]+(\.[0-9]+)?\s*-?\s*(min|mins|minutes?)\M.*\m(load|loading|response|respond|to open|page)|\m(significant(ly)?|severe(ly)?|major|extreme(ly)?|very|really|super|painfully|unusably|unbearably|incredibly|terribly|insanely) (slow|sluggish|laggy)|\m(significant|severe|major|massive|huge|serious) (performance |latency )?(degradation|slowdown|slow-?down|latency|performance (issues?|problems?))|\m(timing out|time-?outs|crawling|unusable)\M$re$,
     'P2', 'performance', 'Playbook P2: significant performance degradation (>10 second load times).', true),
    ('major_functionality', 310,
     $re$\m(leads?|lead submissions?|enquir(y|ies)|inquir(y|ies)|quote requests?|quotations?|rfqs?|contact forms?|forms?|submissions?|orders?|sign ?ups?|registrations?|search|cart|logins?|log-?ins?|sign ?ins?|uploads?|checkouts?)\M(\W+\w+){0,3}?\W+(fail(s|ed|ing|ures?)?|broken|down|lost|missing|disappear(ed|ing)?|errors?|erroring|(not|n't)\W+(\w+\W+)?(working|saving|saved|submitting|submitted|going through|arriving|received|recorded|stored))\M|\m(can'?t|cannot|unable to|nobody can|no one can) (\w+ ){0,2}?(submit|send (a |an |the )?(lead|enquiry|inquiry|quote|form)|place (an |their )?orders?|log ?in|sign ?in|sign ?up|register|search|add to cart|upload)\M|\m(major|core|key|critical|main|essential) (\w+ ){0,2}?(functionality|features?|functions?|flows?|workflows?)\M$re$,
     'P2', 'functionality', 'Playbook P2: major functionality broken (lead submission fails).', true),
    ('integration_failure', 320,
     $re$\m(e-?mails?|smtp|sendgrid|mailgun|mailchimp|whats ?app|sms|twilio|webhooks?|notifications?|crm|zapier|integrations?)\M(\W+\w+){0,4}?\W*(fail(s|ed|ing|ures?)?|broken|down|bounc(e|es|ed|ing)|errors?|stuck|outage|unavailable|(not|n't|never|no longer|stopped)\W+(\w+\W+)?(working|sending|sent|delivered|delivering|arriving|arrived|received|going out|firing|syncing|synced|coming through))\M|\mintegration (failure|error|outage)s?$re$,
     'P2', 'integration', 'Playbook P2: Email/WhatsApp integration failures.', true),
    ('availability_status', 330,
     $re$\m(availability|stock|inventory|in-?stock)( status| levels?| counts?| data)?\M(\W+\w+){0,3}?\W*((not|n't|never|no longer|stopped)\W+(\w+\W+)?(updat(e|ing|ed)|refresh(ing|ed)?|chang(e|ing|ed)|sync(ing|ed)?|showing)|stuck|stale|frozen|out of (date|sync)|outdated|wrong)\M$re$,
     'P2', 'availability', 'Playbook P2: availability status not updating.', true),
    ('performance_moderate', 400,
     $re$\m([3-9]|10)(\.[0-9]+)?\s*(-|to|–)?\s*(([3-9]|10)(\.[0-9]+)?\s*)?-?\s*(s|secs?|seconds?)\M|\m(moderate(ly)?|a (bit|little)|somewhat|slightly|kind of|kinda|bit) (slow|sluggish|laggy)|\m(moderate|minor|slight|some) (performance|latency|slowness|slow-?down)|\m(slow(er)?|sluggish|laggy|latency)\M$re$,
     'P3', 'performance', 'Playbook P3: moderate performance issues (3-5 second load times; 5-10 s too, see docs/classification.md).', true),
    ('functionality_issue', 410,
     $re$\m((not|n't)\W+(work(ing)?|load(ing)?|sav(e|ing))|broken|bug|buggy|fail(s|ed|ing|ure)?|errors?|crash(es|ed|ing)?)\M$re$,
     'P3', 'functionality', 'Something does not work and no rule above knows it: P3 until someone judges the impact.', true),
    ('cosmetic', 500,
     $re$\m(cosmetic|typos?|spelling|misspel+(ed|ing|t)?|grammar|wording|misaligned|mis-?aligned|alignment|off-?cent(er|re)|fonts?|colou?rs?|padding|margins?|spacing|pixels?|css|styling|icons?|logo|favicon|placeholder|tooltip|capitali[sz]ation|truncated (text|label)|overflowing text)\M$re$,
     'P4', 'cosmetic', 'Playbook P4: cosmetic issues.', true),
    ('documentation', 230,
     $re$\m(documentation|docs|readme|runbook|wiki|help (pages?|articles?|text|cent(er|re))|faq|user guide|manual|api reference|changelog)\M$re$,
     'P4', 'documentation', 'Playbook P4: documentation errors.', true),
    ('ui_inconsistency', 520,
     $re$\m(ui|ux|user interface|look and feel|visual|design)\W+(\w+\W+){0,2}?(inconsisten\w*|glitch\w*|issues?|nits?|tweaks?|polish|mismatch\w*|differences?|quirks?)|\minconsisten(t|cy|cies)\M$re$,
     'P4', 'cosmetic', 'Playbook P4: minor UI inconsistencies.', true),
    ('feature_request', 530,
     $re$\m(feature requests?|enhancements?|nice to have|would be (nice|great|good|helpful|useful)|(could|can) (we|you) (please )?(add|have|get|support)|it would help|wish ?list|suggestions?|non-?urgent|request(ing|ed)? (a |an )?(new )?(feature|option|ability|button|setting|report|export)|add (a |an )?(new )?(feature|option|ability|button|setting|dark mode|filter|export))\M$re$,
     'P4', 'feature_request', 'Playbook P4: non-urgent feature requests.', true),
    ('unclassified', 10000, '^', 'P3', 'unclassified',
     'Catch-all: text that no rule recognises is P3, looked at within 4 hours without paging anyone. Disable it to make incident_classify() return NULL instead.', true);

------------------------------------------------------------------------------
-- The classifier (src/classify.c)
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident_classify(phrase text)
RETURNS text
AS 'MODULE_PATHNAME', 'incident_classify_text'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_classify(text) IS
'The severity (P1..P4) of an incident described by the text: that of the first enabled rule of incident_classify_rule, by priority, whose pattern matches. The seeded catch-all rule "unclassified" makes unrecognised text P3; NULL only if no enabled rule matches.';

CREATE FUNCTION @extschema@.incident_classify_explain(phrase text,
    OUT rank int, OUT rule text, OUT severity text, OUT category text, OUT priority int,
    OUT pattern text, OUT matched text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'incident_classify_explain_text'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 3;

COMMENT ON FUNCTION @extschema@.incident_classify_explain(text) IS
'Every enabled rule whose pattern matches the text, in the order the classifier tries them: rank 1 is the rule that decides incident_classify(text), rank 2 the runner-up. matched is the part of the text the pattern matched.';

CREATE FUNCTION @extschema@.incident_classify(signals jsonb)
RETURNS text
AS 'MODULE_PATHNAME', 'incident_classify_signals'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_classify(jsonb) IS
'The severity (P1..P4) that facts about an incident call for, the most severe of them: {"outage": true}, {"security": true}, {"payment": true}, {"database_down": true} are P1; {"page_load_s": s} is P2 above 10 s and P3 from 3 s to 10 s; {"users_affected_pct": p} is P1 above 50, P2 from 10 and P3 above 0. NULL when no fact calls for any. Unrecognised keys and wrong types are errors.';

CREATE FUNCTION @extschema@.incident_classify_explain(signals jsonb,
    OUT signal text, OUT value jsonb, OUT severity text, OUT reason text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'incident_classify_explain_signals'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 3;

COMMENT ON FUNCTION @extschema@.incident_classify_explain(jsonb) IS
'Each fact of the signals with the severity it calls for (NULL if none) and why, most severe first: the first row''s severity is incident_classify(signals).';

------------------------------------------------------------------------------
-- Declaring with severity NULL or 'auto'
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@.incident__choose_severity(severity text, title text, description text,
                                                                 OUT chosen text, OUT why jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    phrase text;
    winner record;
    runner_up record;
    classified boolean := false;
BEGIN
    IF severity IS NOT NULL AND pg_catalog.lower(pg_catalog.btrim(severity)) <> 'auto' THEN
        chosen := @extschema@.incident_severity_normalize(severity);
        why := NULL;
        RETURN;
    END IF;

    phrase := pg_catalog.concat_ws(E'\n', title, description);
    -- one pass of the classifier gives both the winner and the runner-up
    FOR runner_up IN SELECT * FROM @extschema@.incident_classify_explain(phrase) e WHERE e.rank <= 2 ORDER BY e.rank LOOP
        IF runner_up.rank = 1 THEN
            winner := runner_up;
            classified := true;
        END IF;
    END LOOP;
    IF NOT classified THEN
        RAISE EXCEPTION 'could not classify incident "%"', title
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'No enabled rule of incident_classify_rule matches its title or description.',
                  HINT = 'Give a severity (P1, P2, P3 or P4), or enable the catch-all rule "unclassified".';
    END IF;
    chosen := winner.severity;
    why := pg_catalog.jsonb_build_object(
        'severity', winner.severity,
        'rule', winner.rule,
        'category', winner.category,
        'matched', winner.matched,
        'runner_up', CASE WHEN runner_up.rank <> 2 THEN NULL
                          ELSE pg_catalog.jsonb_build_object('rule', runner_up.rule, 'severity', runner_up.severity,
                                                             'category', runner_up.category) END,
        'asked', coalesce(severity, 'NULL'));
END
$$;

COMMENT ON FUNCTION @extschema@.incident__choose_severity(text, text, text) IS
'Internal: the severity a declaration gets from what the caller gave, and why when it was not given outright: for NULL or ''auto'', the classification of title and description by incident_classify_explain() (rule, category, the text matched, the runner-up).';

------------------------------------------------------------------------------
-- pg_dump and privileges
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_classify_rule', 'WHERE NOT is_default');

REVOKE ALL ON FUNCTION @extschema@.incident_classify(text), @extschema@.incident_classify(jsonb),
                       @extschema@.incident_classify_explain(text), @extschema@.incident_classify_explain(jsonb),
                       @extschema@.incident__classify_rule_check()
   FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.incident_classify(text), @extschema@.incident_classify(jsonb),
                          @extschema@.incident_classify_explain(text), @extschema@.incident_classify_explain(jsonb)
   TO incident_viewer;
GRANT SELECT ON @extschema@.incident_classify_rule TO incident_viewer;
GRANT INSERT, UPDATE, DELETE ON @extschema@.incident_classify_rule TO incident_admin;

-- from extension/0.2.0/20_sla.sql
/* extension/0.2.0/20_sla.sql: SLA clocks counted in business calendars.
 *
 * Calendars (a time zone, weekly working spans in local wall-clock time,
 * holidays) are rows an incident_admin inserts; "24x7" is seeded and is every
 * severity's calendar until one is set to another. Deadline arithmetic is in
 * C (src/sla.c): incident_calendar_add, incident_calendar_working_time and
 * incident_sla_deadline. incident__deadline, through which every lifecycle
 * function computes its clocks, now counts them in the severity's calendar.
 * incident_sla shows every clock of every incident and incident_sla_compliance
 * the share of clocks met per month, severity and clock.
 */

------------------------------------------------------------------------------
-- Calendars
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_calendar (
    name        text PRIMARY KEY,
    time_zone   text NOT NULL,
    description text,
    is_default  boolean NOT NULL DEFAULT false
);

COMMENT ON TABLE @extschema@.incident_calendar IS
'Business calendars in which SLA clocks are counted: a name and an IANA time zone; working hours in incident_calendar_hours, holidays in incident_calendar_holiday. "24x7" is seeded. Editable by incident_admin.';
COMMENT ON COLUMN @extschema@.incident_calendar.name IS 'The calendar''s name, as incident_severity.calendar and incident_sla_deadline() take it.';
COMMENT ON COLUMN @extschema@.incident_calendar.time_zone IS 'IANA time zone (a name from pg_timezone_names) in which the working hours and holidays are local times and days.';
COMMENT ON COLUMN @extschema@.incident_calendar.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';

CREATE TABLE @extschema@.incident_calendar_hours (
    calendar    text NOT NULL REFERENCES @extschema@.incident_calendar ON UPDATE CASCADE ON DELETE CASCADE,
    dow         int NOT NULL CHECK (dow BETWEEN 0 AND 6),
    starts      time NOT NULL,
    ends        time NOT NULL,
    is_default  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (calendar, dow, starts),
    CHECK (starts < ends)
);

COMMENT ON TABLE @extschema@.incident_calendar_hours IS
'Weekly working hours of each calendar: spans [starts, ends) of local wall-clock time on a day of the week; several spans a day, none overlapping; a span ends at the latest at 24:00. Editable by incident_admin.';
COMMENT ON COLUMN @extschema@.incident_calendar_hours.dow IS 'Day of the week, 0 = Sunday .. 6 = Saturday, as EXTRACT(dow FROM ...).';
COMMENT ON COLUMN @extschema@.incident_calendar_hours.starts IS 'Local time at which the span starts (inclusive).';
COMMENT ON COLUMN @extschema@.incident_calendar_hours.ends IS 'Local time at which the span ends (exclusive); 24:00 for the end of the day. A span across midnight is two rows: one to 24:00, one from 00:00 of the next day.';
COMMENT ON COLUMN @extschema@.incident_calendar_hours.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';

CREATE TABLE @extschema@.incident_calendar_holiday (
    calendar    text NOT NULL REFERENCES @extschema@.incident_calendar ON UPDATE CASCADE ON DELETE CASCADE,
    day         date NOT NULL CHECK (pg_catalog.isfinite(day)),
    yearly      boolean NOT NULL DEFAULT false,
    name        text,
    PRIMARY KEY (calendar, day)
);

COMMENT ON TABLE @extschema@.incident_calendar_holiday IS
'Holidays of each calendar: local days with no working time. Editable by incident_admin.';
COMMENT ON COLUMN @extschema@.incident_calendar_holiday.day IS 'The holiday''s date; with yearly, only its month and day count.';
COMMENT ON COLUMN @extschema@.incident_calendar_holiday.yearly IS 'True: a holiday on this month and day every year (29 February: only in leap years); false: on this date only.';
COMMENT ON COLUMN @extschema@.incident_calendar_holiday.name IS 'What the holiday is, for people.';

INSERT INTO @extschema@.incident_calendar (name, time_zone, description, is_default)
VALUES ('24x7', 'UTC', 'Around the clock, every day: deadlines are plain timestamptz + interval.', true);
INSERT INTO @extschema@.incident_calendar_hours (calendar, dow, starts, ends, is_default)
SELECT '24x7', d, '00:00', '24:00', true FROM pg_catalog.generate_series(0, 6) AS d;

------------------------------------------------------------------------------
-- Validation: clear errors, nothing written
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__span_text(starts time, ends time)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT pg_catalog.regexp_replace(starts::text, ':00$', '') || '-'
        || pg_catalog.regexp_replace(ends::text, ':00$', '')
$$;

COMMENT ON FUNCTION @extschema@.incident__span_text(time, time) IS
'Internal: a working span as people write it, such as 09:00-17:00.';

CREATE FUNCTION @extschema@.incident__calendar_check()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.name IS NULL OR NEW.name !~ '^[^[:space:]](.*[^[:space:]])?$' OR pg_catalog.length(NEW.name) > 63 THEN
        RAISE EXCEPTION 'invalid calendar name "%"', NEW.name
            USING ERRCODE = 'check_violation',
                  DETAIL = 'A calendar name has 1 to 63 characters and does not start or end with a blank.',
                  HINT = 'Give a name such as "office-berlin".';
    END IF;
    PERFORM @extschema@.incident__require_timezone(NEW.time_zone, pg_catalog.format('calendar "%s"', NEW.name));
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__calendar_check() IS
'Internal trigger: a calendar needs a sensible name and a time zone PostgreSQL knows.';

CREATE FUNCTION @extschema@.incident__calendar_hours_check()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    days constant text[] := ARRAY['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
    other @extschema@.incident_calendar_hours;
BEGIN
    -- serializes changes to one calendar's hours, so that the overlap check holds
    PERFORM FROM @extschema@.incident_calendar c WHERE c.name = NEW.calendar FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'calendar "%" does not exist', NEW.calendar
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Insert the calendar into incident_calendar first.';
    END IF;
    IF NEW.dow IS NULL OR NEW.dow NOT BETWEEN 0 AND 6 THEN
        RAISE EXCEPTION 'invalid day of week % for calendar "%"', coalesce(NEW.dow::text, 'NULL'), NEW.calendar
            USING ERRCODE = 'check_violation',
                  HINT = 'Days of the week are 0 (Sunday) to 6 (Saturday).';
    END IF;
    IF NEW.starts IS NULL OR NEW.ends IS NULL THEN
        RAISE EXCEPTION 'working hours of calendar "%" on % need a start and an end', NEW.calendar, days[NEW.dow + 1]
            USING ERRCODE = 'not_null_violation',
                  HINT = 'Give both, such as starts => ''09:00'', ends => ''17:00''.';
    END IF;
    IF NEW.starts >= NEW.ends THEN
        RAISE EXCEPTION 'invalid working hours % for calendar "%" on %',
                        @extschema@.incident__span_text(NEW.starts, NEW.ends), NEW.calendar, days[NEW.dow + 1]
            USING ERRCODE = 'check_violation',
                  DETAIL = 'A span starts before it ends, within one day; it may end at 24:00.',
                  HINT = 'For hours across midnight, enter two spans: one ending at 24:00 and one starting at 00:00 on the next day.';
    END IF;
    SELECT * INTO other FROM @extschema@.incident_calendar_hours h
     WHERE h.calendar = NEW.calendar AND h.dow = NEW.dow
       AND h.starts < NEW.ends AND NEW.starts < h.ends
       AND (TG_OP = 'INSERT' OR (h.calendar, h.dow, h.starts) <> (OLD.calendar, OLD.dow, OLD.starts))
     ORDER BY h.starts LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'working hours % overlap % of calendar "%" on %',
                        @extschema@.incident__span_text(NEW.starts, NEW.ends),
                        @extschema@.incident__span_text(other.starts, other.ends), NEW.calendar, days[NEW.dow + 1]
            USING ERRCODE = 'exclusion_violation',
                  DETAIL = 'The spans of a day must not overlap; they may touch, one ending when the next starts.',
                  HINT = 'Change or delete the existing span first, or enter the hours not covered yet.';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__calendar_hours_check() IS
'Internal trigger: a working span belongs to a calendar that exists, lies within one day (starts < ends <= 24:00) and overlaps no other span of its day.';

CREATE FUNCTION @extschema@.incident__calendar_hours_keep()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    users text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.calendar = OLD.calendar THEN
        RETURN NULL;
    END IF;
    -- the calendar itself was renamed or deleted: its foreign keys decide
    IF NOT EXISTS (SELECT FROM @extschema@.incident_calendar c WHERE c.name = OLD.calendar) THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT FROM @extschema@.incident_calendar_hours h WHERE h.calendar = OLD.calendar) THEN
        RETURN NULL;
    END IF;
    SELECT pg_catalog.string_agg(s.severity, ', ' ORDER BY s.severity) INTO users
      FROM @extschema@.incident_severity s WHERE s.calendar = OLD.calendar;
    IF users IS NOT NULL THEN
        RAISE EXCEPTION 'calendar "%" would have no working hours', OLD.calendar
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format(CASE WHEN users LIKE '%,%' THEN 'Severities %s count their deadlines in it.'
                                                  ELSE 'Severity %s counts its deadlines in it.' END, users),
                  HINT = 'Give those severities another calendar first (UPDATE incident_severity SET calendar = ...), or keep at least one span.';
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__calendar_hours_keep() IS
'Internal trigger: refuses to take the last working span away from a calendar that a severity uses.';

CREATE FUNCTION @extschema@.incident__calendar_holiday_check()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM @extschema@.incident_calendar c WHERE c.name = NEW.calendar) THEN
        RAISE EXCEPTION 'calendar "%" does not exist', NEW.calendar
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Insert the calendar into incident_calendar first.';
    END IF;
    IF NEW.day IS NULL OR NOT pg_catalog.isfinite(NEW.day) THEN
        RAISE EXCEPTION 'invalid holiday "%" for calendar "%"', coalesce(NEW.day::text, 'NULL'), NEW.calendar
            USING ERRCODE = 'check_violation',
                  HINT = 'Give a date such as ''2026-12-25''; set yearly to repeat it every year.';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__calendar_holiday_check() IS
'Internal trigger: a holiday belongs to a calendar that exists and falls on a finite date.';

CREATE FUNCTION @extschema@.incident__severity_calendar_check()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM @extschema@.incident_calendar c WHERE c.name = NEW.calendar) THEN
        RAISE EXCEPTION 'calendar "%" does not exist', NEW.calendar
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = pg_catalog.format('Severity %s was to count its deadlines in it.', NEW.severity),
                  HINT = 'See incident_calendar for the calendars; "24x7" is open around the clock.';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__severity_calendar_check() IS
'Internal trigger: a severity''s calendar must exist.';


-- "restore" sorts before "validate": a pg_dump restore of an edited seeded
-- row replaces the seeded one before it could be taken for an overlap.
CREATE TRIGGER incident_calendar_edited
    BEFORE UPDATE ON @extschema@.incident_calendar
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__mark_edited();
CREATE TRIGGER incident_calendar_restore
    BEFORE INSERT ON @extschema@.incident_calendar
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__replace_default('name');
CREATE TRIGGER incident_calendar_validate
    BEFORE INSERT OR UPDATE ON @extschema@.incident_calendar
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__calendar_check();
CREATE TRIGGER incident_calendar_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.incident_calendar
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__config_changed();

CREATE TRIGGER incident_calendar_hours_edited
    BEFORE UPDATE ON @extschema@.incident_calendar_hours
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__mark_edited();
CREATE TRIGGER incident_calendar_hours_restore
    BEFORE INSERT ON @extschema@.incident_calendar_hours
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__replace_default('calendar', 'dow', 'starts');
CREATE TRIGGER incident_calendar_hours_validate
    BEFORE INSERT OR UPDATE ON @extschema@.incident_calendar_hours
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__calendar_hours_check();
CREATE TRIGGER incident_calendar_hours_keep
    AFTER UPDATE OR DELETE ON @extschema@.incident_calendar_hours
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__calendar_hours_keep();
CREATE TRIGGER incident_calendar_hours_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.incident_calendar_hours
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__config_changed();

CREATE TRIGGER incident_calendar_holiday_validate
    BEFORE INSERT OR UPDATE ON @extschema@.incident_calendar_holiday
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__calendar_holiday_check();
CREATE TRIGGER incident_calendar_holiday_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.incident_calendar_holiday
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__config_changed();

------------------------------------------------------------------------------
-- Each severity counts its clocks in a calendar
------------------------------------------------------------------------------

ALTER TABLE @extschema@.incident_severity
    ADD COLUMN calendar text NOT NULL DEFAULT '24x7'
        REFERENCES @extschema@.incident_calendar ON UPDATE CASCADE;

COMMENT ON COLUMN @extschema@.incident_severity.calendar IS
'Calendar in whose working time the response, update and review clocks of incidents of this severity run; 24x7 (plain elapsed time) unless set to a business calendar.';

CREATE TRIGGER incident_severity_calendar
    BEFORE INSERT OR UPDATE OF calendar ON @extschema@.incident_severity
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__severity_calendar_check();

------------------------------------------------------------------------------
-- Working-time arithmetic (src/sla.c)
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident_calendar_add(calendar text, start timestamptz, span interval)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'incident_calendar_add'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_calendar_add(text, timestamptz, interval) IS
'The instant at which span of the calendar''s working time has passed since start (a day of span is 24 working hours, a month 30 days); a calendar open around the clock without holidays gives start + span.';

CREATE FUNCTION @extschema@.incident_calendar_working_time(calendar text, from_time timestamptz, to_time timestamptz)
RETURNS interval
AS 'MODULE_PATHNAME', 'incident_calendar_working_time'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_calendar_working_time(text, timestamptz, timestamptz) IS
'The calendar''s working time between from_time (inclusive) and to_time (exclusive), in hours; negative if to_time is earlier.';

CREATE FUNCTION @extschema@.incident_sla_deadline(severity text, start timestamptz)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'incident_sla_deadline'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_sla_deadline(text, timestamptz) IS
'The response deadline of an incident of this severity (P1..P4 or critical/high/medium/low) declared at start: start plus the severity''s response_time, counted in the severity''s calendar. NULL if start is NULL.';

CREATE FUNCTION @extschema@.incident_sla_deadline(severity text, start timestamptz, calendar text)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'incident_sla_deadline'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.incident_sla_deadline(text, timestamptz, text) IS
'The response deadline of an incident of this severity declared at start, counted in the working time of the given calendar (the severity''s when calendar is NULL). NULL if start is NULL.';

CREATE OR REPLACE FUNCTION @extschema@.incident__deadline(severity text, clock text, start timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sev @extschema@.incident_severity;
    span interval;
BEGIN
    IF start IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO sev FROM @extschema@.incident_severity s WHERE s.severity = incident__deadline.severity;
    span := CASE clock WHEN 'response' THEN sev.response_time
                       WHEN 'update' THEN sev.update_every
                       WHEN 'pir' THEN sev.pir_due END;
    IF sev.calendar = '24x7' THEN
        RETURN @extschema@.incident_calendar_add('24x7', start, span);
    END IF;
    -- A declaration must not fail in the middle of an outage because a
    -- calendar has no working time (no hours yet, or holidays all year):
    -- count around the clock instead, and say so.
    BEGIN
        RETURN @extschema@.incident_calendar_add(sev.calendar, start, span);
    EXCEPTION WHEN object_not_in_prerequisite_state OR datetime_field_overflow THEN
        RAISE WARNING 'calendar "%" of severity % has no working time; the % clock is counted around the clock',
                      sev.calendar, sev.severity, clock
            USING DETAIL = SQLERRM,
                  HINT = 'Add working hours to the calendar, or set the severity''s calendar to "24x7".';
        RETURN @extschema@.incident_calendar_add('24x7', start, span);
    END;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__deadline(text, text, timestamptz) IS
'Internal: when a clock (response, update or pir) of an incident of this severity started at start falls due, counted in the working time of the severity''s calendar (around the clock, with a WARNING, when that calendar has no working time). Every lifecycle function computes its deadlines here.';

------------------------------------------------------------------------------
-- Every clock of every incident, and monthly compliance
------------------------------------------------------------------------------

CREATE VIEW @extschema@.incident_sla AS
WITH clocks AS (
    SELECT i.id, i.code, i.severity, 'response'::text AS clock, 1 AS clock_no, 1::bigint AS seq,
           i.declared_at AS started_at, i.response_due AS due,
           coalesce(i.acknowledged_at, i.resolved_at) AS met_at
      FROM @extschema@.incident i
    UNION ALL
    SELECT i.id, i.code, i.severity, 'update', 2, u.seq, u.started_at, u.due, u.met_at
      FROM @extschema@.incident i
     CROSS JOIN LATERAL (
        SELECT pg_catalog.row_number() OVER (ORDER BY s.id) AS seq,
               s.at AS started_at,
               CASE WHEN s.next_id IS NULL AND i.resolved_at IS NULL THEN i.next_update_due
                    ELSE coalesce(
                        -- a severity change during the interval moved its deadline
                        (SELECT (c.details->>'next_update_due')::timestamptz
                           FROM @extschema@.incident_event c
                          WHERE c.incident_id = i.id AND c.kind = 'severity_changed'
                            AND c.id > s.id AND c.id < coalesce(s.next_id, r.id, 9223372036854775807)
                          ORDER BY c.id DESC LIMIT 1),
                        -- as recorded by the update that started it
                        (s.details->>'next_update_due')::timestamptz,
                        -- the declaration records none: as the severity's settings say now
                        (SELECT @extschema@.incident_calendar_add(sv.calendar, s.at, sv.update_every)
                           FROM @extschema@.incident_severity sv
                          WHERE sv.severity = coalesce(s.details->>'severity', i.severity)))
               END AS due,
               coalesce(s.next_at, i.resolved_at) AS met_at
          FROM (SELECT e.id, e.at, e.details,
                       pg_catalog.lead(e.id) OVER w AS next_id,
                       pg_catalog.lead(e.at) OVER w AS next_at
                  FROM @extschema@.incident_event e
                 WHERE e.incident_id = i.id AND e.kind IN ('declared', 'status_update')
                WINDOW w AS (ORDER BY e.id)) s
          LEFT JOIN LATERAL (SELECT min(e.id) AS id FROM @extschema@.incident_event e
                              WHERE e.incident_id = i.id AND e.kind = 'resolved') r ON true
     ) u
    UNION ALL
    SELECT i.id, i.code, i.severity, 'pir', 3, 1, i.resolved_at, i.pir_due, i.closed_at
      FROM @extschema@.incident i
     WHERE i.resolved_at IS NOT NULL
)
SELECT c.code,
       c.severity,
       c.clock,
       c.seq,
       c.started_at,
       c.due,
       c.met_at,
       c.due - coalesce(c.met_at, @extschema@.incident_now()) AS remaining,
       CASE WHEN coalesce(c.met_at, @extschema@.incident_now()) > c.due
            THEN coalesce(c.met_at, @extschema@.incident_now()) - c.due END AS overdue,
       @extschema@.incident_clock_state(c.due, c.due - c.started_at, c.met_at) AS state
  FROM clocks c
 ORDER BY c.id, c.clock_no, c.seq;

COMMENT ON VIEW @extschema@.incident_sla IS
'Every SLA clock of every incident, one row each: the response clock, one update clock per interval between status updates (from the declaration or an update to the next update or the resolution), and the post-incident review clock once resolved; with due time, met time, time remaining or overdue, and state ok, due_soon or breached.';
COMMENT ON COLUMN @extschema@.incident_sla.severity IS 'The incident''s current severity.';
COMMENT ON COLUMN @extschema@.incident_sla.clock IS 'response (acknowledge in time), update (post a status update in time) or pir (hold the post-incident review in time).';
COMMENT ON COLUMN @extschema@.incident_sla.seq IS 'Number of the interval for update clocks (1 from the declaration, 2 from the first update, ...); 1 for the other clocks.';
COMMENT ON COLUMN @extschema@.incident_sla.started_at IS 'When the clock started: the declaration (response, first update interval), the status update that began the interval, or the resolution (pir).';
COMMENT ON COLUMN @extschema@.incident_sla.due IS 'When the clock falls due, counted in the severity''s calendar; as stored on the incident and recorded in its timeline.';
COMMENT ON COLUMN @extschema@.incident_sla.met_at IS 'When the clock stopped: acknowledgement (or resolution without one) for response, the next status update (or the resolution) for update, closing the incident for pir; NULL while running.';
COMMENT ON COLUMN @extschema@.incident_sla.remaining IS 'due minus met_at, or minus incident_now() while running: time left, negative when late.';
COMMENT ON COLUMN @extschema@.incident_sla.overdue IS 'How late: met_at (or incident_now() while running) minus due when that is past due; NULL otherwise.';
COMMENT ON COLUMN @extschema@.incident_sla.state IS 'ok, due_soon (running, in the last quarter of the time between start and due) or breached (past due, or met late), from incident_clock_state().';

CREATE VIEW @extschema@.incident_sla_compliance AS
SELECT pg_catalog.date_trunc('month', s.started_at AT TIME ZONE @extschema@.incident_timezone())::date AS month,
       s.severity,
       s.clock,
       pg_catalog.count(*) AS total,
       pg_catalog.count(*) FILTER (WHERE s.met_at IS NOT NULL AND s.state = 'ok') AS met,
       pg_catalog.count(*) FILTER (WHERE s.state = 'breached') AS breached,
       pg_catalog.count(*) FILTER (WHERE s.met_at IS NULL AND s.state <> 'breached') AS running,
       pg_catalog.round(100.0 * pg_catalog.count(*) FILTER (WHERE s.met_at IS NOT NULL AND s.state = 'ok')
                        / nullif(pg_catalog.count(*) FILTER (WHERE s.state = 'breached' OR s.met_at IS NOT NULL), 0), 1)
           AS compliance_pct
  FROM @extschema@.incident_sla s
 GROUP BY 1, 2, 3
 ORDER BY 1, 2, pg_catalog.array_position(ARRAY['response', 'update', 'pir'], s.clock);

COMMENT ON VIEW @extschema@.incident_sla_compliance IS
'SLA compliance per month, severity and clock: how many clocks were met in time and how many breached, from incident_sla.';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.month IS 'First day of the month in which the clocks started, in pg_incident.timezone (as incident codes).';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.severity IS 'The incidents'' current severity.';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.clock IS 'response, update or pir.';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.total IS 'Clocks that started in the month: met + breached + running.';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.met IS 'Clocks stopped by their due time.';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.breached IS 'Clocks stopped late, or running past their due time.';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.running IS 'Clocks still running and not yet due: not counted in compliance_pct.';
COMMENT ON COLUMN @extschema@.incident_sla_compliance.compliance_pct IS 'met / (met + breached) in percent, one decimal; NULL when nothing is decided yet.';

------------------------------------------------------------------------------
-- pg_dump, roles and privileges
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_calendar', 'WHERE NOT is_default');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_calendar_hours', 'WHERE NOT is_default');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_calendar_holiday', '');

REVOKE ALL ON FUNCTION @extschema@.incident__span_text(time, time),
                       @extschema@.incident__calendar_check(),
                       @extschema@.incident__calendar_hours_check(),
                       @extschema@.incident__calendar_hours_keep(),
                       @extschema@.incident__calendar_holiday_check(),
                       @extschema@.incident__severity_calendar_check(),
                       @extschema@.incident_calendar_add(text, timestamptz, interval),
                       @extschema@.incident_calendar_working_time(text, timestamptz, timestamptz),
                       @extschema@.incident_sla_deadline(text, timestamptz),
                       @extschema@.incident_sla_deadline(text, timestamptz, text)
   FROM PUBLIC;

GRANT SELECT ON @extschema@.incident_calendar, @extschema@.incident_calendar_hours,
                @extschema@.incident_calendar_holiday,
                @extschema@.incident_sla, @extschema@.incident_sla_compliance
   TO incident_viewer;
GRANT EXECUTE ON FUNCTION @extschema@.incident_calendar_add(text, timestamptz, interval),
                          @extschema@.incident_calendar_working_time(text, timestamptz, timestamptz),
                          @extschema@.incident_sla_deadline(text, timestamptz),
                          @extschema@.incident_sla_deadline(text, timestamptz, text)
   TO incident_viewer;
GRANT INSERT, UPDATE, DELETE ON @extschema@.incident_calendar, @extschema@.incident_calendar_hours,
                                @extschema@.incident_calendar_holiday
   TO incident_admin;

-- from extension/0.2.0/30_oncall.sql
/* extension/0.2.0/30_oncall.sql: on-call rotations and escalation policies.
 *
 * Responders and their contacts, rotations of responders with overrides, the
 * playbook's three incident roles with a primary and a backup, and
 * escalation policies: who is paged, and when, while an incident stays
 * unacknowledged. incident_oncall() says who is on call at a time;
 * incident_escalations shows the next escalation of every unacknowledged
 * incident and incident_escalate() performs it by hand. The background
 * worker that escalates on time builds on these and comes later.
 *
 * Time arithmetic:
 *  - a rotation's handoffs are counted in its own time zone's wall clock:
 *    handoff k is (starts_at in local time) + k * shift, read back in that
 *    zone, so a Monday 09:00 handoff stays at 09:00 across daylight saving;
 *  - escalation delays are elapsed time (a '1 day' delay is 24 hours), so a
 *    schedule does not depend on the session's TimeZone.
 */

------------------------------------------------------------------------------
-- Responders
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_responder (
    name    text PRIMARY KEY CHECK (name = pg_catalog.btrim(name) AND name <> '' AND pg_catalog.length(name) <= 200),
    phone   text,
    email   text CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    chat    text
);

COMMENT ON TABLE @extschema@.incident_responder IS
'People who can be paged: their name (as used in rotations, overrides, incident roles and escalation levels) and how to reach them. Editable by incident_admin.';
COMMENT ON COLUMN @extschema@.incident_responder.name IS 'The responder''s name; use the same name as in incident_acknowledge(code, responder).';
COMMENT ON COLUMN @extschema@.incident_responder.phone IS 'Phone number for pages and calls (free text, such as +966-5X-XXX-XXXX).';
COMMENT ON COLUMN @extschema@.incident_responder.email IS 'Email address.';
COMMENT ON COLUMN @extschema@.incident_responder.chat IS 'Chat handle, such as @john on Slack.';

------------------------------------------------------------------------------
-- Rotations, their members and overrides
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_rotation (
    name        text PRIMARY KEY CHECK (name = pg_catalog.btrim(name) AND name <> '' AND pg_catalog.length(name) <= 100),
    shift       interval NOT NULL DEFAULT '1 week' CHECK (shift > interval '0'),
    starts_at   timestamptz NOT NULL,
    time_zone   text NOT NULL DEFAULT 'UTC',
    description text
);

COMMENT ON TABLE @extschema@.incident_rotation IS
'On-call rotations: members (incident_rotation_member) take turns in position order, one shift each, starting with the first member at starts_at. Editable by incident_admin; incident_oncall() says who is on call.';
COMMENT ON COLUMN @extschema@.incident_rotation.shift IS 'Length of one member''s turn on the wall clock of time_zone (default 1 week): handoffs keep their local time of day across daylight-saving changes.';
COMMENT ON COLUMN @extschema@.incident_rotation.starts_at IS 'The first handoff, to the member at the lowest position; its local time in time_zone is the handoff time of every shift. Before it the rotation has nobody on call.';
COMMENT ON COLUMN @extschema@.incident_rotation.time_zone IS 'IANA time zone of the handoffs, such as Asia/Riyadh or Europe/Berlin.';

CREATE TABLE @extschema@.incident_rotation_member (
    rotation    text NOT NULL REFERENCES @extschema@.incident_rotation ON UPDATE CASCADE ON DELETE CASCADE,
    position    int NOT NULL CHECK (position > 0),
    responder   text NOT NULL REFERENCES @extschema@.incident_responder ON UPDATE CASCADE,
    backup      text REFERENCES @extschema@.incident_responder ON UPDATE CASCADE,
    PRIMARY KEY (rotation, position),
    UNIQUE (rotation, responder),
    CHECK (backup <> responder)
);

COMMENT ON TABLE @extschema@.incident_rotation_member IS
'Members of each rotation in turn order (position ascending; gaps allowed). During a member''s shift the member is primary; the backup is the member''s own backup if set, else the next member in order (the first after the last); a one-member rotation without a backup has none.';
COMMENT ON COLUMN @extschema@.incident_rotation_member.position IS 'Turn order within the rotation: the member at the lowest position takes the shift that begins at starts_at.';
COMMENT ON COLUMN @extschema@.incident_rotation_member.responder IS 'The primary responder during this member''s shifts.';
COMMENT ON COLUMN @extschema@.incident_rotation_member.backup IS 'Who backs this member up during their shifts (pairs that rotate together, as in the playbook); NULL: the next member in order.';

CREATE TABLE @extschema@.incident_rotation_override (
    id          bigserial PRIMARY KEY,
    rotation    text NOT NULL REFERENCES @extschema@.incident_rotation ON UPDATE CASCADE ON DELETE CASCADE,
    slot        text NOT NULL DEFAULT 'primary' CHECK (slot IN ('primary', 'backup')),
    responder   text NOT NULL REFERENCES @extschema@.incident_responder ON UPDATE CASCADE,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    reason      text,
    created_by  text NOT NULL DEFAULT current_user,
    CHECK (ends_at > starts_at)
);

CREATE INDEX incident_rotation_override_rotation_idx
    ON @extschema@.incident_rotation_override (rotation, slot, starts_at);

COMMENT ON TABLE @extschema@.incident_rotation_override IS
'Someone covers the primary or the backup slot of a rotation from starts_at until ends_at (exclusive), whoever the rotation says. Overrides of the same rotation and slot may not overlap. Editable by incident_admin.';
COMMENT ON COLUMN @extschema@.incident_rotation_override.slot IS 'primary or backup.';
COMMENT ON COLUMN @extschema@.incident_rotation_override.ends_at IS 'End of the cover, exclusive: at ends_at the rotation (or the next override) takes over.';
COMMENT ON COLUMN @extschema@.incident_rotation_override.created_by IS 'The role that inserted the override.';

------------------------------------------------------------------------------
-- The playbook's incident roles
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_team_role (
    role                text PRIMARY KEY CHECK (role IN ('incident_commander', 'technical_lead', 'communications_lead')),
    title               text NOT NULL,
    responsibilities    text[] NOT NULL DEFAULT '{}',
    primary_title       text,
    backup_title        text,
    primary_responder   text REFERENCES @extschema@.incident_responder ON UPDATE CASCADE,
    backup_responder    text REFERENCES @extschema@.incident_responder ON UPDATE CASCADE,
    is_default          boolean NOT NULL DEFAULT false
);

COMMENT ON TABLE @extschema@.incident_team_role IS
'The playbook''s Incident Response Team: the three incident roles (incident_commander, technical_lead, communications_lead), their responsibilities, and who fills each as primary and backup. Seeded with the playbook''s job titles; incident_admin sets the people.';
COMMENT ON COLUMN @extschema@.incident_team_role.role IS 'The role as incident_assign() takes it.';
COMMENT ON COLUMN @extschema@.incident_team_role.title IS 'The role''s name in the playbook.';
COMMENT ON COLUMN @extschema@.incident_team_role.primary_title IS 'The playbook''s job title of the primary (such as System Administrator).';
COMMENT ON COLUMN @extschema@.incident_team_role.backup_title IS 'The playbook''s job title of the backup (such as DevOps Engineer).';
COMMENT ON COLUMN @extschema@.incident_team_role.primary_responder IS 'The responder who fills the role; NULL until an admin sets it.';
COMMENT ON COLUMN @extschema@.incident_team_role.backup_responder IS 'The responder who fills the role when the primary cannot; NULL until an admin sets it.';
COMMENT ON COLUMN @extschema@.incident_team_role.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';

INSERT INTO @extschema@.incident_team_role
    (role, title, responsibilities, primary_title, backup_title, is_default)
VALUES
    ('incident_commander', 'Incident Commander (IC)',
     ARRAY['Overall incident coordination', 'Decision making authority',
           'Communication with stakeholders', 'Resource allocation'],
     'System Administrator', 'DevOps Engineer', true),
    ('technical_lead', 'Technical Lead',
     ARRAY['Technical investigation and resolution', 'Implementation of fixes',
           'Technical communication to IC'],
     'Lead Developer', 'Senior Developer', true),
    ('communications_lead', 'Communications Lead',
     ARRAY['Internal team communication', 'Customer communication', 'Status page updates',
           'Documentation'],
     'Business Owner', 'Project Manager', true);

CREATE TRIGGER incident_team_role_edited
    BEFORE UPDATE ON @extschema@.incident_team_role
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__mark_edited();
CREATE TRIGGER incident_team_role_restore
    BEFORE INSERT ON @extschema@.incident_team_role
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__replace_default('role');

------------------------------------------------------------------------------
-- Escalation policies
------------------------------------------------------------------------------

CREATE TABLE @extschema@.incident_escalation_policy (
    name            text PRIMARY KEY CHECK (name = pg_catalog.btrim(name) AND name <> '' AND pg_catalog.length(name) <= 100),
    description     text,
    repeat_every    interval CHECK (repeat_every > interval '0'),
    repeat_limit    int CHECK (repeat_limit > 0),
    is_default      boolean NOT NULL DEFAULT false,
    CHECK (repeat_limit IS NULL OR repeat_every IS NOT NULL)
);

COMMENT ON TABLE @extschema@.incident_escalation_policy IS
'Escalation policies: ordered levels (incident_escalation_level) that page someone when an incident is still unacknowledged a delay after its declaration, optionally repeated. A severity''s escalation_policy says which applies. Editable by incident_admin.';
COMMENT ON COLUMN @extschema@.incident_escalation_policy.repeat_every IS 'NULL: the levels run once. Otherwise the whole policy runs again, this long after its last level, for as long as the incident stays unacknowledged (elapsed time).';
COMMENT ON COLUMN @extschema@.incident_escalation_policy.repeat_limit IS 'How many times the policy repeats after its first run; NULL with repeat_every set: until the incident is acknowledged.';
COMMENT ON COLUMN @extschema@.incident_escalation_policy.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';

CREATE TABLE @extschema@.incident_escalation_level (
    policy          text NOT NULL REFERENCES @extschema@.incident_escalation_policy ON UPDATE CASCADE ON DELETE CASCADE,
    level           int NOT NULL CHECK (level > 0),
    delay           interval NOT NULL CHECK (delay >= interval '0'),
    target_type     text NOT NULL CHECK (target_type IN ('rotation_primary', 'rotation_backup', 'responder',
                                                         'role_primary', 'role_backup')),
    target          text NOT NULL,
    note            text,
    is_default      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (policy, level)
);

COMMENT ON TABLE @extschema@.incident_escalation_level IS
'Levels of each escalation policy, in level order: level n is due delay after the declaration if the incident is still unacknowledged, and pages its target. Delays may not decrease from one level to the next.';
COMMENT ON COLUMN @extschema@.incident_escalation_level.level IS 'Order of the level within its policy (1 first; gaps allowed).';
COMMENT ON COLUMN @extschema@.incident_escalation_level.delay IS 'Elapsed time after the declaration when the level is due (0: at once; ''1 day'' is 24 hours).';
COMMENT ON COLUMN @extschema@.incident_escalation_level.target_type IS 'rotation_primary or rotation_backup (target names a rotation), responder (target names a responder), role_primary or role_backup (target names an incident role).';
COMMENT ON COLUMN @extschema@.incident_escalation_level.target IS 'The rotation, responder or incident role paged; resolved to a responder when the level is due. A rotation or responder may be created after the level that names it; until then the level pages nobody.';
COMMENT ON COLUMN @extschema@.incident_escalation_level.note IS 'What the level is for, shown in the escalation event.';
COMMENT ON COLUMN @extschema@.incident_escalation_level.is_default IS 'True while the row is as seeded; editing it clears the flag so that pg_dump keeps the edit.';

-- The playbook, Phase 2.1, for P1/P2: "Page on-call engineer immediately;
-- notify Incident Commander". The rotation "on-call" and the people of the
-- roles are the users' to create; until then these levels page nobody, and
-- incident_escalations says why.
INSERT INTO @extschema@.incident_escalation_policy (name, description, repeat_every, repeat_limit, is_default)
VALUES ('page-on-call',
        'P1/P2 (playbook 2.1): page the on-call engineer and notify the Incident Commander at once; page the on-call backup if nobody has acknowledged after 10 minutes; repeat every 20 minutes, 3 times.',
        '20 minutes', 3, true);

INSERT INTO @extschema@.incident_escalation_level (policy, level, delay, target_type, target, note, is_default)
VALUES ('page-on-call', 1, '0', 'rotation_primary', 'on-call', 'Page on-call engineer immediately', true),
       ('page-on-call', 2, '0', 'role_primary', 'incident_commander', 'Notify Incident Commander', true),
       ('page-on-call', 3, '10 minutes', 'rotation_backup', 'on-call', 'Still unacknowledged: page the on-call backup', true);

CREATE TRIGGER incident_escalation_policy_edited
    BEFORE UPDATE ON @extschema@.incident_escalation_policy
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__mark_edited();
CREATE TRIGGER incident_escalation_policy_restore
    BEFORE INSERT ON @extschema@.incident_escalation_policy
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__replace_default('name');
CREATE TRIGGER incident_escalation_level_edited
    BEFORE UPDATE ON @extschema@.incident_escalation_level
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__mark_edited();
CREATE TRIGGER incident_escalation_level_restore
    BEFORE INSERT ON @extschema@.incident_escalation_level
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__replace_default('policy', 'level');

-- Which policy applies: per severity. Seeded P1 and P2 rows get the seeded
-- policy without counting as edited (an upgrade also gives it to P1/P2 rows
-- a user edited).
ALTER TABLE @extschema@.incident_severity
    ADD COLUMN escalation_policy text REFERENCES @extschema@.incident_escalation_policy ON UPDATE CASCADE;

COMMENT ON COLUMN @extschema@.incident_severity.escalation_policy IS
'The escalation policy for unacknowledged incidents of this severity; NULL: they do not escalate.';

ALTER TABLE @extschema@.incident_severity DISABLE TRIGGER incident_severity_edited;
UPDATE @extschema@.incident_severity SET escalation_policy = 'page-on-call'
 WHERE severity IN ('P1', 'P2') AND escalation_policy IS NULL;
ALTER TABLE @extschema@.incident_severity ENABLE TRIGGER incident_severity_edited;

------------------------------------------------------------------------------
-- Checks of the configuration: clear errors instead of constraint names
------------------------------------------------------------------------------

-- The CHECK and FOREIGN KEY constraints above stay as the last line of
-- defence; these BEFORE triggers run first and say what is wrong with which
-- value, and how to fix it. They are SECURITY DEFINER so that the admins
-- whose writes fire them need no rights on the internal helpers they call.

CREATE FUNCTION @extschema@.incident__require_responder(name text, what text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION '% must not be null', what
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the name of a responder from incident_responder.';
    END IF;
    IF NOT EXISTS (SELECT FROM @extschema@.incident_responder r WHERE r.name = incident__require_responder.name) THEN
        RAISE EXCEPTION 'responder "%" does not exist', name
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = pg_catalog.format('It was given as %s.', what),
                  HINT = 'Add the responder to incident_responder first (name, phone, email, chat).';
    END IF;
    RETURN name;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__require_responder(text, text) IS
'Internal: the responder''s name, or an error naming it and what it was given as if it is null or not in incident_responder.';

CREATE FUNCTION @extschema@.incident__require_rotation(name text)
RETURNS @extschema@.incident_rotation
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.incident_rotation;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'rotation must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the name of a rotation from incident_rotation.';
    END IF;
    SELECT * INTO r FROM @extschema@.incident_rotation x WHERE x.name = incident__require_rotation.name;
    IF r.name IS NULL THEN
        RAISE EXCEPTION 'rotation "%" does not exist', name
            USING ERRCODE = 'no_data_found',
                  HINT = 'See incident_rotation for the rotations.';
    END IF;
    RETURN r;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__require_rotation(text) IS
'Internal: the rotation of this name, or an error if the name is null or unknown.';

CREATE FUNCTION @extschema@.incident__check_responder()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.name := @extschema@.incident__require_text(NEW.name, 'responder name', 200);
    NEW.phone := nullif(pg_catalog.btrim(NEW.phone), '');
    NEW.email := nullif(pg_catalog.btrim(NEW.email), '');
    NEW.chat := nullif(pg_catalog.btrim(NEW.chat), '');
    IF NEW.email !~ '^[^@[:space:]]+@[^@[:space:]]+$' THEN
        RAISE EXCEPTION 'invalid email address "%" for responder "%"', NEW.email, NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give an address such as jane@example.com, or NULL.';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__check_responder() IS
'Internal trigger: trims a responder''s name and contacts (empty contacts become NULL) and refuses an empty name or a malformed email address.';

CREATE TRIGGER incident_responder_check
    BEFORE INSERT OR UPDATE ON @extschema@.incident_responder
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__check_responder();

CREATE FUNCTION @extschema@.incident__check_rotation()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.name := @extschema@.incident__require_text(NEW.name, 'rotation name', 100);
    PERFORM @extschema@.incident__require_timezone(NEW.time_zone, pg_catalog.format('rotation "%s"', NEW.name));
    IF NEW.shift IS NULL THEN
        RAISE EXCEPTION 'shift of rotation "%" must not be null', NEW.name
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a shift length such as ''1 week'' (the default), ''1 day'' or ''12 hours''.';
    END IF;
    -- no negative part either, so that handoffs always move forward
    IF NEW.shift <= interval '0'
       OR pg_catalog.date_part('year', NEW.shift) * 12 + pg_catalog.date_part('month', NEW.shift) < 0
       OR pg_catalog.date_part('day', NEW.shift) < 0
       OR NEW.shift - pg_catalog.date_trunc('day', NEW.shift) < interval '0' THEN
        RAISE EXCEPTION 'invalid shift "%" for rotation "%"', NEW.shift, NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A shift must be longer than zero and have no negative part.',
                  HINT = 'Give a shift length such as ''1 week'' (the default), ''1 day'' or ''12 hours''.';
    END IF;
    IF NEW.starts_at IS NULL THEN
        RAISE EXCEPTION 'starts_at of rotation "%" must not be null', NEW.name
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the first handoff with its time zone, such as ''2026-03-02 09:00 Europe/Berlin''.';
    END IF;
    IF NEW.starts_at IN ('infinity', '-infinity') THEN
        RAISE EXCEPTION 'invalid starts_at "%" for rotation "%"', NEW.starts_at, NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the first handoff with its time zone, such as ''2026-03-02 09:00 Europe/Berlin''.';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__check_rotation() IS
'Internal trigger: refuses a rotation with an empty name, an invalid time zone, a shift that is not positive or a missing or infinite first handoff.';

CREATE TRIGGER incident_rotation_check
    BEFORE INSERT OR UPDATE ON @extschema@.incident_rotation
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__check_rotation();

CREATE FUNCTION @extschema@.incident__check_rotation_member()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    other int;
BEGIN
    IF NEW.rotation IS NULL OR NOT EXISTS (SELECT FROM @extschema@.incident_rotation r WHERE r.name = NEW.rotation) THEN
        RAISE EXCEPTION 'rotation "%" does not exist', coalesce(NEW.rotation, 'NULL')
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Create the rotation in incident_rotation first.';
    END IF;
    IF NEW.position IS NULL OR NEW.position <= 0 THEN
        RAISE EXCEPTION 'invalid position "%" in rotation "%"', coalesce(NEW.position::text, 'NULL'), NEW.rotation
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Positions are whole numbers from 1 up, in turn order.';
    END IF;
    PERFORM @extschema@.incident__require_responder(NEW.responder,
        pg_catalog.format('the member at position %s of rotation "%s"', NEW.position, NEW.rotation));
    IF NEW.backup IS NOT NULL THEN
        PERFORM @extschema@.incident__require_responder(NEW.backup,
            pg_catalog.format('the backup at position %s of rotation "%s"', NEW.position, NEW.rotation));
        IF NEW.backup = NEW.responder THEN
            RAISE EXCEPTION 'responder "%" cannot be their own backup in rotation "%"', NEW.responder, NEW.rotation
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Name someone else as backup, or leave it NULL so that the next member backs up.';
        END IF;
    END IF;
    SELECT m.position INTO other FROM @extschema@.incident_rotation_member m
     WHERE m.rotation = NEW.rotation AND m.responder = NEW.responder AND m.position <> NEW.position
       AND (TG_OP = 'INSERT' OR (m.rotation, m.position) <> (OLD.rotation, OLD.position));
    IF other IS NOT NULL THEN
        RAISE EXCEPTION 'responder "%" is already a member of rotation "%"', NEW.responder, NEW.rotation
            USING ERRCODE = 'unique_violation',
                  DETAIL = pg_catalog.format('They are at position %s.', other),
                  HINT = 'A responder takes one turn per round; change the position of the existing member instead.';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__check_rotation_member() IS
'Internal trigger: refuses a member of an unknown rotation, at a position below 1, naming an unknown responder or backup, backing up themselves, or already in the rotation.';

CREATE TRIGGER incident_rotation_member_check
    BEFORE INSERT OR UPDATE ON @extschema@.incident_rotation_member
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__check_rotation_member();

CREATE FUNCTION @extschema@.incident__check_rotation_override()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    clash @extschema@.incident_rotation_override;
BEGIN
    IF NEW.rotation IS NULL OR NOT EXISTS (SELECT FROM @extschema@.incident_rotation r WHERE r.name = NEW.rotation) THEN
        RAISE EXCEPTION 'rotation "%" does not exist', coalesce(NEW.rotation, 'NULL')
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Create the rotation in incident_rotation first.';
    END IF;
    NEW.slot := pg_catalog.lower(pg_catalog.btrim(NEW.slot));
    IF NEW.slot IS NULL OR NEW.slot NOT IN ('primary', 'backup') THEN
        RAISE EXCEPTION 'invalid slot "%" for an override of rotation "%"', coalesce(NEW.slot, 'NULL'), NEW.rotation
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid slots are primary and backup.';
    END IF;
    PERFORM @extschema@.incident__require_responder(NEW.responder,
        pg_catalog.format('the %s override of rotation "%s"', NEW.slot, NEW.rotation));
    IF NEW.starts_at IS NULL OR NEW.ends_at IS NULL THEN
        RAISE EXCEPTION 'override of rotation "%" needs both starts_at and ends_at', NEW.rotation
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the period the cover lasts, such as starts_at ''2026-03-05 09:00 Asia/Riyadh'' and ends_at ''2026-03-06 09:00 Asia/Riyadh''.';
    END IF;
    IF NEW.ends_at <= NEW.starts_at THEN
        RAISE EXCEPTION 'invalid override period from "%" to "%" for rotation "%"', NEW.starts_at, NEW.ends_at, NEW.rotation
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'ends_at must be after starts_at.';
    END IF;

    -- Serialize overrides of one rotation, so that two sessions cannot each
    -- add one half of an overlap.
    PERFORM FROM @extschema@.incident_rotation r WHERE r.name = NEW.rotation FOR UPDATE;
    SELECT * INTO clash FROM @extschema@.incident_rotation_override o
     WHERE o.rotation = NEW.rotation AND o.slot = NEW.slot
       AND o.starts_at < NEW.ends_at AND NEW.starts_at < o.ends_at
       AND (TG_OP = 'INSERT' OR o.id <> OLD.id)
     ORDER BY o.starts_at LIMIT 1;
    IF clash.id IS NOT NULL THEN
        RAISE EXCEPTION 'override of the % of rotation "%" from "%" to "%" overlaps override %',
                        NEW.slot, NEW.rotation, NEW.starts_at, NEW.ends_at, clash.id
            USING ERRCODE = 'exclusion_violation',
                  DETAIL = pg_catalog.format('Override %s has %s cover the %s from %s to %s.',
                                             clash.id, clash.responder, clash.slot, clash.starts_at, clash.ends_at),
                  HINT = 'Overrides of one slot may not overlap: shorten or delete the other one first.';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__check_rotation_override() IS
'Internal trigger: refuses an override of an unknown rotation or slot, by an unknown responder, with an empty period, or overlapping another override of the same rotation and slot.';

CREATE TRIGGER incident_rotation_override_check
    BEFORE INSERT OR UPDATE ON @extschema@.incident_rotation_override
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__check_rotation_override();

CREATE FUNCTION @extschema@.incident__check_team_role()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.primary_responder IS NOT NULL THEN
        PERFORM @extschema@.incident__require_responder(NEW.primary_responder,
            pg_catalog.format('the primary of role %s', NEW.role));
    END IF;
    IF NEW.backup_responder IS NOT NULL THEN
        PERFORM @extschema@.incident__require_responder(NEW.backup_responder,
            pg_catalog.format('the backup of role %s', NEW.role));
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__check_team_role() IS
'Internal trigger: refuses an incident role filled by an unknown responder.';

CREATE TRIGGER incident_team_role_check
    BEFORE INSERT OR UPDATE ON @extschema@.incident_team_role
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__check_team_role();

CREATE FUNCTION @extschema@.incident__check_escalation_policy()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.name := @extschema@.incident__require_text(NEW.name, 'escalation policy name', 100);
    IF NEW.repeat_every <= interval '0' THEN
        RAISE EXCEPTION 'invalid repeat_every "%" for escalation policy "%"', NEW.repeat_every, NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a positive interval such as ''30 minutes'', or NULL to run the levels once.';
    END IF;
    IF NEW.repeat_limit IS NOT NULL AND (NEW.repeat_limit <= 0 OR NEW.repeat_every IS NULL) THEN
        RAISE EXCEPTION 'invalid repeat_limit "%" for escalation policy "%"', NEW.repeat_limit, NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('repeat_every is %s.', coalesce(NEW.repeat_every::text, 'NULL')),
                  HINT = 'repeat_limit counts repeats after the first run: 1 or more, with repeat_every set; NULL repeats until acknowledged.';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__check_escalation_policy() IS
'Internal trigger: refuses an escalation policy with an empty name, a repeat interval that is not positive, or a repeat limit below 1 or without a repeat interval.';

CREATE TRIGGER incident_escalation_policy_check
    BEFORE INSERT OR UPDATE ON @extschema@.incident_escalation_policy
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__check_escalation_policy();

CREATE FUNCTION @extschema@.incident__check_escalation_level()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    what text;
BEGIN
    IF NEW.policy IS NULL OR NOT EXISTS (SELECT FROM @extschema@.incident_escalation_policy p WHERE p.name = NEW.policy) THEN
        RAISE EXCEPTION 'escalation policy "%" does not exist', coalesce(NEW.policy, 'NULL')
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Create the policy in incident_escalation_policy first.';
    END IF;
    IF NEW.level IS NULL OR NEW.level <= 0 THEN
        RAISE EXCEPTION 'invalid level "%" in escalation policy "%"', coalesce(NEW.level::text, 'NULL'), NEW.policy
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Levels are whole numbers from 1 up, in escalation order.';
    END IF;
    what := pg_catalog.format('level %s of escalation policy "%s"', NEW.level, NEW.policy);
    IF NEW.delay IS NULL THEN
        RAISE EXCEPTION 'delay of % must not be null', what
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the time after the declaration when the level is due, such as ''0'' (at once) or ''10 minutes''.';
    END IF;
    IF pg_catalog.date_part('epoch', NEW.delay) < 0 THEN
        RAISE EXCEPTION 'invalid delay "%" for %', NEW.delay, what
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A delay counts from the declaration and cannot be negative.',
                  HINT = 'Give a delay of zero or more, such as ''0'' (at once) or ''10 minutes''.';
    END IF;
    NEW.target_type := pg_catalog.lower(pg_catalog.btrim(NEW.target_type));
    IF NEW.target_type IS NULL OR NEW.target_type NOT IN ('rotation_primary', 'rotation_backup', 'responder',
                                                          'role_primary', 'role_backup') THEN
        RAISE EXCEPTION 'invalid target type "%" for %', coalesce(NEW.target_type, 'NULL'), what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid target types are rotation_primary, rotation_backup, responder, role_primary and role_backup.';
    END IF;
    IF NEW.target IS NULL THEN
        RAISE EXCEPTION 'target of % must not be null', what
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Name the rotation, responder or incident role the level pages.';
    END IF;
    -- Rotations and responders are names resolved when the level is due, not
    -- checked here: a policy may be set up before its rotation, and pg_dump
    -- restores this table in any order relative to theirs. A name that does
    -- not resolve pages nobody, and incident_escalations says why.
    IF NEW.target_type IN ('role_primary', 'role_backup') THEN
        NEW.target := pg_catalog.lower(pg_catalog.btrim(NEW.target));
        IF NEW.target NOT IN ('incident_commander', 'technical_lead', 'communications_lead') THEN
            RAISE EXCEPTION 'invalid incident role "%" for %', NEW.target, what
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Valid roles are incident_commander, technical_lead and communications_lead.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__check_escalation_level() IS
'Internal trigger: refuses an escalation level of an unknown policy, with a level below 1, a missing or negative delay, an unknown target type or incident role. Rotation and responder targets may name ones not created yet (so that a policy can be set up first, and pg_dump can restore in any order); incident_escalations shows such a level as paging nobody, and why.';

CREATE TRIGGER incident_escalation_level_check
    BEFORE INSERT OR UPDATE ON @extschema@.incident_escalation_level
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__check_escalation_level();

CREATE FUNCTION @extschema@.incident__check_escalation_order()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
BEGIN
    -- an AFTER ROW trigger runs once the whole statement is done, so that
    -- one UPDATE may shift every delay of a policy at once; the policy row
    -- is locked so that two sessions adding levels check one after the other
    PERFORM FROM @extschema@.incident_escalation_policy p WHERE p.name = NEW.policy FOR UPDATE;
    SELECT a.level AS earlier, a.delay AS earlier_delay, b.level AS later, b.delay AS later_delay INTO bad
      FROM @extschema@.incident_escalation_level a
      JOIN @extschema@.incident_escalation_level b
        ON b.policy = a.policy AND b.level > a.level
       AND pg_catalog.date_part('epoch', b.delay) < pg_catalog.date_part('epoch', a.delay)
     WHERE a.policy = NEW.policy
     ORDER BY a.level, b.level LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'delay of level % of escalation policy "%" (%) is shorter than that of level % (%)',
                        bad.later, NEW.policy, bad.later_delay, bad.earlier, bad.earlier_delay
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Levels escalate in order, so their delays may not decrease.',
                  HINT = 'Give later levels the same or a longer delay, or renumber the levels.';
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__check_escalation_order() IS
'Internal trigger: at the end of a statement, refuses a policy whose delays decrease from one level to the next.';

CREATE TRIGGER incident_escalation_level_order
    AFTER INSERT OR UPDATE ON @extschema@.incident_escalation_level
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__check_escalation_order();

------------------------------------------------------------------------------
-- Who is on call
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__rotation_handoff(r @extschema@.incident_rotation, shift_no bigint)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- shift 0 begins at starts_at itself; later ones on the local wall clock
    SELECT CASE WHEN shift_no = 0 THEN r.starts_at
                ELSE ((r.starts_at AT TIME ZONE r.time_zone) + shift_no * r.shift) AT TIME ZONE r.time_zone END
$$;

COMMENT ON FUNCTION @extschema@.incident__rotation_handoff(@extschema@.incident_rotation, bigint) IS
'Internal: when shift number shift_no (0 first) of the rotation begins: starts_at plus shift_no shifts, counted on the wall clock of the rotation''s time zone. A local time that does not exist that day (the spring-forward gap) is read as PostgreSQL reads it, one hour later by the clock.';

CREATE FUNCTION @extschema@.incident__rotation_shift(r @extschema@.incident_rotation, at timestamptz)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    when_ timestamptz := incident__rotation_shift.at;
    k bigint;
BEGIN
    IF when_ < r.starts_at THEN
        RETURN NULL;
    END IF;
    -- estimate from local times, then step to the exact shift: months in the
    -- estimate count 30 days and daylight saving moves handoffs by an hour
    k := pg_catalog.floor(pg_catalog.date_part('epoch', (when_ AT TIME ZONE r.time_zone) - (r.starts_at AT TIME ZONE r.time_zone))
                          / pg_catalog.date_part('epoch', r.shift))::bigint;
    k := greatest(k, 0);
    WHILE @extschema@.incident__rotation_handoff(r, k + 1) <= when_ LOOP
        k := k + 1;
    END LOOP;
    WHILE k > 0 AND @extschema@.incident__rotation_handoff(r, k) > when_ LOOP
        k := k - 1;
    END LOOP;
    RETURN k;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__rotation_shift(@extschema@.incident_rotation, timestamptz) IS
'Internal: the number of the rotation''s shift (0 first) that is running at a time; NULL before starts_at.';

CREATE FUNCTION @extschema@.incident__oncall(rotation text, at timestamptz,
                                             OUT primary_responder text, OUT backup_responder text,
                                             OUT primary_reason text, OUT backup_reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    when_ timestamptz := incident__oncall.at;
    r @extschema@.incident_rotation;
    members text[];
    backups text[];
    n int;
    k bigint;
    i int;
    o @extschema@.incident_rotation_override;
BEGIN
    SELECT * INTO r FROM @extschema@.incident_rotation x WHERE x.name = incident__oncall.rotation;
    IF r.name IS NULL THEN
        primary_reason := pg_catalog.format('rotation "%s" does not exist', incident__oncall.rotation);
        backup_reason := primary_reason;
        RETURN;
    END IF;
    SELECT pg_catalog.array_agg(m.responder ORDER BY m.position), pg_catalog.array_agg(m.backup ORDER BY m.position)
      INTO members, backups
      FROM @extschema@.incident_rotation_member m WHERE m.rotation = r.name;
    n := coalesce(pg_catalog.array_length(members, 1), 0);
    IF n = 0 THEN
        primary_reason := pg_catalog.format('rotation "%s" has no members', r.name);
        backup_reason := primary_reason;
        RETURN;
    END IF;

    k := @extschema@.incident__rotation_shift(r, when_);
    IF k IS NULL THEN
        primary_reason := pg_catalog.format('rotation "%s" starts at %s', r.name, r.starts_at);
        backup_reason := primary_reason;
    ELSE
        i := (k % n)::int + 1;
        primary_responder := members[i];
        backup_responder := coalesce(backups[i], CASE WHEN n > 1 THEN members[i % n + 1] END);
        IF backup_responder IS NULL THEN
            backup_reason := pg_catalog.format('rotation "%s" has one member and no backup', r.name);
        END IF;
    END IF;

    SELECT * INTO o FROM @extschema@.incident_rotation_override x
     WHERE x.rotation = r.name AND x.slot = 'primary' AND x.starts_at <= when_ AND when_ < x.ends_at;
    IF o.id IS NOT NULL THEN
        primary_responder := o.responder;
        primary_reason := NULL;
    END IF;
    o := NULL;
    SELECT * INTO o FROM @extschema@.incident_rotation_override x
     WHERE x.rotation = r.name AND x.slot = 'backup' AND x.starts_at <= when_ AND when_ < x.ends_at;
    IF o.id IS NOT NULL THEN
        backup_responder := o.responder;
        backup_reason := NULL;
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__oncall(text, timestamptz) IS
'Internal: primary and backup of a rotation at a time, overrides applied, and for each one that is NULL the reason (unknown rotation, no members, not started, one member); never raises, so that views can use it.';

CREATE FUNCTION @extschema@.incident_oncall(rotation text, at timestamptz DEFAULT @extschema@.incident_now(),
                                            OUT primary_responder text, OUT backup_responder text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.incident_rotation := @extschema@.incident__require_rotation(incident_oncall.rotation);
    found_ record;
BEGIN
    IF incident_oncall.at IS NULL THEN
        RAISE EXCEPTION 'time must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a time, or leave it out for now (incident_now()).';
    END IF;
    IF NOT EXISTS (SELECT FROM @extschema@.incident_rotation_member m WHERE m.rotation = r.name) THEN
        RAISE EXCEPTION 'rotation "%" has no members', r.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Add responders to it: INSERT INTO incident_rotation_member (rotation, position, responder) VALUES (%L, 1, ...).', r.name);
    END IF;
    SELECT * INTO found_ FROM @extschema@.incident__oncall(r.name, incident_oncall.at);
    primary_responder := found_.primary_responder;
    backup_responder := found_.backup_responder;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_oncall(text, timestamptz) IS
'Who is on call in a rotation at a time (default: incident_now()): the primary and the backup, overrides applied. Both are NULL before the rotation''s first handoff; the backup is NULL in a one-member rotation without a backup. An error for an unknown rotation or one without members.';

CREATE FUNCTION @extschema@.incident_oncall_schedule(rotation text, since timestamptz, until timestamptz)
RETURNS TABLE (starts_at timestamptz, ends_at timestamptz, primary_responder text, backup_responder text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.incident_rotation := @extschema@.incident__require_rotation(incident_oncall_schedule.rotation);
    bounds timestamptz[];
    k bigint;
    t timestamptz;
    shifts int := 0;
    i int;
BEGIN
    IF since IS NULL OR until IS NULL OR until <= since THEN
        RAISE EXCEPTION 'invalid period from "%" to "%"', coalesce(since::text, 'NULL'), coalesce(until::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give two times, the second after the first.';
    END IF;
    IF NOT EXISTS (SELECT FROM @extschema@.incident_rotation_member m WHERE m.rotation = r.name) THEN
        RAISE EXCEPTION 'rotation "%" has no members', r.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Add responders to it: INSERT INTO incident_rotation_member (rotation, position, responder) VALUES (%L, 1, ...).', r.name);
    END IF;
    -- every moment in the period at which someone may change: handoffs and
    -- the ends of overrides
    bounds := ARRAY[since];
    k := coalesce(@extschema@.incident__rotation_shift(r, since), -1) + 1;
    LOOP
        t := @extschema@.incident__rotation_handoff(r, k);
        EXIT WHEN t >= until;
        IF t > since THEN
            bounds := bounds || t;
        END IF;
        shifts := shifts + 1;
        IF shifts > 10000 THEN
            RAISE EXCEPTION 'period from "%" to "%" spans more than 10000 shifts of rotation "%"', since, until, r.name
                USING ERRCODE = 'program_limit_exceeded',
                      HINT = 'Ask for a shorter period.';
        END IF;
        k := k + 1;
    END LOOP;
    SELECT bounds || coalesce(pg_catalog.array_agg(b), '{}') INTO bounds
      FROM @extschema@.incident_rotation_override o, LATERAL (VALUES (o.starts_at), (o.ends_at)) AS v(b)
     WHERE o.rotation = r.name AND v.b > since AND v.b < until;
    SELECT pg_catalog.array_agg(DISTINCT b ORDER BY b) INTO bounds FROM pg_catalog.unnest(bounds) AS b;
    bounds := bounds || until;

    FOR i IN 1 .. pg_catalog.array_length(bounds, 1) - 1 LOOP
        starts_at := bounds[i];
        ends_at := bounds[i + 1];
        SELECT o.primary_responder, o.backup_responder INTO primary_responder, backup_responder
          FROM @extschema@.incident__oncall(r.name, bounds[i]) o;
        RETURN NEXT;
    END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_oncall_schedule(text, timestamptz, timestamptz) IS
'Who is on call in a rotation from since until until: one row per stretch of time with the same people, cut at each handoff and at the start and end of each override. At most 10000 shifts.';

------------------------------------------------------------------------------
-- Escalation
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.incident__escalation_step(policy_name text, declared timestamptz, step_no int,
                                                      OUT step int, OUT repeat int, OUT level int,
                                                      OUT delay interval, OUT due_at timestamptz,
                                                      OUT target_type text, OUT target text, OUT note text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Steps number the levels of every run in order: with n levels, step s is
    -- level number s % n + 1 of run s / n (0: the first run, 1: the first
    -- repeat). A run starts repeat_every after the previous run's last level.
    WITH levels AS (
        SELECT l.*, (pg_catalog.row_number() OVER (ORDER BY l.level) - 1)::int AS idx,
               (pg_catalog.count(*) OVER ())::int AS n,
               pg_catalog.max(pg_catalog.date_part('epoch', l.delay)) OVER () AS last_delay_s
          FROM @extschema@.incident_escalation_level l
         WHERE l.policy = $1
    )
    SELECT $3, $3 / l.n, l.level, l.delay,
           $2 + pg_catalog.make_interval(secs => ($3 / l.n) * (l.last_delay_s + coalesce(pg_catalog.date_part('epoch', p.repeat_every), 0))
                                                 + pg_catalog.date_part('epoch', l.delay)),
           l.target_type, l.target, l.note
      FROM levels l
      JOIN @extschema@.incident_escalation_policy p ON p.name = l.policy
     WHERE $3 >= 0 AND l.idx = $3 % l.n
       AND ($3 / l.n = 0 OR (p.repeat_every IS NOT NULL AND (p.repeat_limit IS NULL OR $3 / l.n <= p.repeat_limit)))
$$;

COMMENT ON FUNCTION @extschema@.incident__escalation_step(text, timestamptz, int) IS
'Internal: escalation step number step_no (0 first) of a policy for an incident declared at declared_at: its run (0: first, 1: first repeat), level, delay, due time and target; no row once the policy is exhausted. Delays are elapsed time.';

CREATE FUNCTION @extschema@.incident__escalation_target(target_type text, target text, at timestamptz,
                                                        OUT responder text, OUT reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    oc record;
    tr @extschema@.incident_team_role;
BEGIN
    IF target_type IN ('rotation_primary', 'rotation_backup') THEN
        SELECT * INTO oc FROM @extschema@.incident__oncall(target, at);
        IF target_type = 'rotation_primary' THEN
            responder := oc.primary_responder;
            reason := oc.primary_reason;
        ELSE
            responder := oc.backup_responder;
            reason := oc.backup_reason;
        END IF;
    ELSIF target_type IN ('role_primary', 'role_backup') THEN
        SELECT * INTO tr FROM @extschema@.incident_team_role x WHERE x.role = target;
        responder := CASE target_type WHEN 'role_primary' THEN tr.primary_responder ELSE tr.backup_responder END;
        IF responder IS NULL THEN
            reason := pg_catalog.format('role %s has no %s responder set', target,
                                        CASE target_type WHEN 'role_primary' THEN 'primary' ELSE 'backup' END);
        END IF;
    ELSIF target_type = 'responder' THEN
        SELECT r.name INTO responder FROM @extschema@.incident_responder r WHERE r.name = target;
        IF responder IS NULL THEN
            reason := pg_catalog.format('responder "%s" does not exist', target);
        END IF;
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__escalation_target(text, text, timestamptz) IS
'Internal: the responder an escalation target (rotation primary or backup, responder, role primary or backup) stands for at a time, or NULL and the reason.';

CREATE FUNCTION @extschema@.incident__escalation_target_text(target_type text, target text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE target_type
        WHEN 'rotation_primary' THEN pg_catalog.format('primary of rotation "%s"', target)
        WHEN 'rotation_backup' THEN pg_catalog.format('backup of rotation "%s"', target)
        WHEN 'role_primary' THEN pg_catalog.format('primary %s', pg_catalog.replace(target, '_', ' '))
        WHEN 'role_backup' THEN pg_catalog.format('backup %s', pg_catalog.replace(target, '_', ' '))
        ELSE 'responder'
    END
$$;

COMMENT ON FUNCTION @extschema@.incident__escalation_target_text(text, text) IS
'Internal: an escalation target in words, such as primary of rotation "on-call".';

CREATE VIEW @extschema@.incident_escalations AS
SELECT i.code,
       i.severity,
       i.title,
       i.declared_at,
       s.escalation_policy AS policy,
       nx.level,
       nx.repeat,
       nx.due_at,
       nx.due_at <= @extschema@.incident_now() AS overdue,
       nx.target_type,
       nx.target,
       t.responder,
       r.phone,
       r.email,
       r.chat,
       CASE
           WHEN s.escalation_policy IS NULL THEN pg_catalog.format('severity %s has no escalation policy', i.severity)
           WHEN nx.step IS NULL AND NOT EXISTS (SELECT FROM @extschema@.incident_escalation_level l
                                                 WHERE l.policy = s.escalation_policy)
               THEN pg_catalog.format('escalation policy "%s" has no levels', s.escalation_policy)
           WHEN nx.step IS NULL THEN pg_catalog.format('escalation policy "%s" is exhausted', s.escalation_policy)
           ELSE t.reason
       END AS reason,
       coalesce(done.levels, '{}') AS done_levels,
       coalesce(done.escalations, 0) AS escalations,
       done.last_at AS last_escalated_at,
       nx.note
  FROM @extschema@.incident i
  JOIN @extschema@.incident_severity s USING (severity)
  LEFT JOIN LATERAL (
        SELECT pg_catalog.array_agg((e.details->>'level')::int ORDER BY e.id) AS levels,
               pg_catalog.count(*)::int AS escalations,
               pg_catalog.max(e.at) AS last_at,
               pg_catalog.max((e.details->>'step')::int) AS last_step
          FROM @extschema@.incident_event e
         WHERE e.incident_id = i.id AND e.kind = 'escalated'
           AND e.details->>'policy' = s.escalation_policy) done ON true
  LEFT JOIN LATERAL @extschema@.incident__escalation_step(s.escalation_policy, i.declared_at,
                                                         coalesce(done.last_step + 1, 0)) nx ON true
  LEFT JOIN LATERAL @extschema@.incident__escalation_target(nx.target_type, nx.target, nx.due_at) t ON true
  LEFT JOIN @extschema@.incident_responder r ON r.name = t.responder
 WHERE i.status = 'declared'
 ORDER BY nx.due_at, i.severity, i.declared_at, i.id;

COMMENT ON VIEW @extschema@.incident_escalations IS
'One row per unacknowledged open incident: the next level of its severity''s escalation policy, when it is due (declaration + delay, later runs when the policy repeats), whom it pages at that time (resolved through rotations, overrides and roles, with contacts) or why nobody, and the levels already escalated. Acknowledging an incident removes it.';
COMMENT ON COLUMN @extschema@.incident_escalations.policy IS 'The escalation policy of the incident''s severity; NULL: it does not escalate.';
COMMENT ON COLUMN @extschema@.incident_escalations.level IS 'The next level to escalate; NULL when none is left (see reason).';
COMMENT ON COLUMN @extschema@.incident_escalations.repeat IS 'Which run of the policy the next level belongs to: 0 the first, 1 the first repeat, and so on.';
COMMENT ON COLUMN @extschema@.incident_escalations.due_at IS 'When the next level is due: declared_at + its delay (+ the runs before it, when the policy repeats).';
COMMENT ON COLUMN @extschema@.incident_escalations.overdue IS 'Whether the next level is due by incident_now().';
COMMENT ON COLUMN @extschema@.incident_escalations.responder IS 'Whom the next level pages, resolved at due_at; NULL: nobody (see reason).';
COMMENT ON COLUMN @extschema@.incident_escalations.phone IS 'The responder''s phone.';
COMMENT ON COLUMN @extschema@.incident_escalations.email IS 'The responder''s email address.';
COMMENT ON COLUMN @extschema@.incident_escalations.chat IS 'The responder''s chat handle.';
COMMENT ON COLUMN @extschema@.incident_escalations.reason IS 'Why responder or level is NULL: no policy, policy exhausted, unknown or empty rotation, rotation not started, role not filled.';
COMMENT ON COLUMN @extschema@.incident_escalations.done_levels IS 'The levels already escalated under this policy, in order (a repeating policy lists a level once per run).';
COMMENT ON COLUMN @extschema@.incident_escalations.escalations IS 'How many escalations under this policy the timeline records.';
COMMENT ON COLUMN @extschema@.incident_escalations.last_escalated_at IS 'When the last of them was recorded.';
COMMENT ON COLUMN @extschema@.incident_escalations.note IS 'The next level''s note.';

CREATE FUNCTION @extschema@.incident_escalation_schedule(code text, max_steps int DEFAULT 100)
RETURNS TABLE (step int, repeat int, level int, due_at timestamptz, target_type text, target text,
               responder text, reason text, state text, escalated_at timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, false);
    policy_ text;
    now_ timestamptz := @extschema@.incident_now();
BEGIN
    IF max_steps IS NULL OR max_steps < 1 THEN
        RAISE EXCEPTION 'invalid max_steps "%"', coalesce(max_steps::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the number of steps to list, 1 or more.';
    END IF;
    SELECT s.escalation_policy INTO policy_ FROM @extschema@.incident_severity s WHERE s.severity = inc.severity;
    RETURN QUERY
    SELECT x.step, x.repeat, x.level, x.due_at, x.target_type, x.target,
           CASE WHEN e.id IS NOT NULL THEN e.details->>'responder' ELSE t.responder END,
           CASE WHEN e.id IS NOT NULL THEN e.details->>'reason' ELSE t.reason END,
           CASE WHEN e.id IS NOT NULL THEN 'escalated'
                WHEN x.due_at <= now_ THEN 'due'
                ELSE 'scheduled' END,
           e.at
      FROM pg_catalog.generate_series(0, max_steps - 1) AS g(n)
     CROSS JOIN LATERAL @extschema@.incident__escalation_step(policy_, inc.declared_at, g.n) x
      LEFT JOIN @extschema@.incident_event e
             ON e.incident_id = inc.id AND e.kind = 'escalated'
            AND e.details->>'policy' = policy_ AND (e.details->>'step')::int = g.n
      LEFT JOIN LATERAL @extschema@.incident__escalation_target(x.target_type, x.target, x.due_at) t
             ON e.id IS NULL
     WHERE x.step IS NOT NULL                   -- no row once the policy is exhausted
       AND (e.id IS NOT NULL OR inc.status = 'declared')
     ORDER BY g.n;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_escalation_schedule(text, int) IS
'The escalation plan of an incident under its severity''s policy, step by step (at most max_steps): each level of each run with its due time, whom it pages (as recorded for steps escalated; resolved at the due time for the others) or why nobody, and its state: escalated, due or scheduled. Once the incident is acknowledged only the escalated steps remain.';

CREATE FUNCTION @extschema@.incident_escalate(code text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc @extschema@.incident := @extschema@.incident__find(code, true);
    now_ timestamptz := @extschema@.incident_now();
    policy_ text;
    last_step int;
    done int;
    last_at timestamptz;
    nx record;
    t record;
    r @extschema@.incident_responder;
    target_text text;
BEGIN
    IF inc.status <> 'declared' THEN
        PERFORM @extschema@.incident__refuse(inc, 'escalate',
            CASE WHEN inc.status IN ('resolved', 'closed')
                 THEN 'Only open, unacknowledged incidents escalate.'
                 ELSE 'Escalation stops once an incident is acknowledged; bring people in with incident_assign().' END);
    END IF;
    SELECT s.escalation_policy INTO policy_ FROM @extschema@.incident_severity s WHERE s.severity = inc.severity;
    IF policy_ IS NULL THEN
        RAISE EXCEPTION 'incident "%" has no escalation policy', inc.code
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Its severity %s has none.', inc.severity),
                  HINT = pg_catalog.format('Set one with UPDATE incident_severity SET escalation_policy = ... WHERE severity = %L.', inc.severity);
    END IF;
    SELECT pg_catalog.max((e.details->>'step')::int), pg_catalog.count(*), pg_catalog.max(e.at)
      INTO last_step, done, last_at
      FROM @extschema@.incident_event e
     WHERE e.incident_id = inc.id AND e.kind = 'escalated' AND e.details->>'policy' = policy_;
    SELECT * INTO nx FROM @extschema@.incident__escalation_step(policy_, inc.declared_at, coalesce(last_step + 1, 0));
    IF nx.step IS NULL THEN
        RAISE EXCEPTION 'incident "%" has no escalation level left', inc.code
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = CASE WHEN done = 0
                                THEN pg_catalog.format('Escalation policy "%s" has no levels.', policy_)
                                ELSE pg_catalog.format('All %s escalations of policy "%s" are done; the last was at %s.', done, policy_, last_at) END,
                  HINT = 'Acknowledge it with incident_acknowledge(), or page someone directly.';
    END IF;

    -- whoever the target stands for now, which is when the page goes out
    SELECT * INTO t FROM @extschema@.incident__escalation_target(nx.target_type, nx.target, now_);
    SELECT * INTO r FROM @extschema@.incident_responder x WHERE x.name = t.responder;
    target_text := @extschema@.incident__escalation_target_text(nx.target_type, nx.target);
    IF t.responder IS NULL THEN
        RAISE WARNING 'level % of escalation policy "%" pages nobody: %', nx.level, policy_, t.reason
            USING HINT = 'The escalation is recorded and the next level follows; fix the rotation, role or policy so that the level reaches someone.';
    END IF;

    PERFORM @extschema@.incident__event(inc, 'escalated', @extschema@.incident_invoker(),
        pg_catalog.format('level %s of policy "%s"%s: %s (%s)', nx.level, policy_,
                          CASE WHEN nx.repeat > 0 THEN pg_catalog.format(', repeat %s', nx.repeat) ELSE '' END,
                          coalesce(t.responder, 'nobody'), coalesce(t.reason, target_text)),
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'policy', policy_, 'step', nx.step, 'repeat', nx.repeat, 'level', nx.level,
            'target_type', nx.target_type, 'target', nx.target, 'responder', t.responder,
            'reason', t.reason, 'phone', r.phone, 'email', r.email, 'chat', r.chat,
            'due_at', nx.due_at, 'early', now_ < nx.due_at, 'by_hand', true)));
    RETURN t.responder;
END
$$;

COMMENT ON FUNCTION @extschema@.incident_escalate(text) IS
'Escalates an unacknowledged incident by hand to the next level of its severity''s escalation policy, due or not: resolves the level''s target now, writes an "escalated" timeline event naming the level and the person (with their contacts), and returns the person (NULL, with a warning, when the level pages nobody). incident_escalations then shows the level after it.';

------------------------------------------------------------------------------
-- pg_dump keeps users' data
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_responder', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_rotation', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_rotation_member', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_rotation_override', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_rotation_override_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_team_role', 'WHERE NOT is_default');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_escalation_policy', 'WHERE NOT is_default');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_escalation_level', 'WHERE NOT is_default');

------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION
    @extschema@.incident__require_responder(text, text),
    @extschema@.incident__require_rotation(text),
    @extschema@.incident__check_responder(),
    @extschema@.incident__check_rotation(),
    @extschema@.incident__check_rotation_member(),
    @extschema@.incident__check_rotation_override(),
    @extschema@.incident__check_team_role(),
    @extschema@.incident__check_escalation_policy(),
    @extschema@.incident__check_escalation_level(),
    @extschema@.incident__check_escalation_order(),
    @extschema@.incident__rotation_handoff(@extschema@.incident_rotation, bigint),
    @extschema@.incident__rotation_shift(@extschema@.incident_rotation, timestamptz),
    @extschema@.incident__oncall(text, timestamptz),
    @extschema@.incident_oncall(text, timestamptz),
    @extschema@.incident_oncall_schedule(text, timestamptz, timestamptz),
    @extschema@.incident__escalation_step(text, timestamptz, int),
    @extschema@.incident__escalation_target(text, text, timestamptz),
    @extschema@.incident__escalation_target_text(text, text),
    @extschema@.incident_escalation_schedule(text, int),
    @extschema@.incident_escalate(text)
  FROM PUBLIC;

GRANT SELECT ON @extschema@.incident_responder, @extschema@.incident_rotation,
                @extschema@.incident_rotation_member, @extschema@.incident_rotation_override,
                @extschema@.incident_team_role, @extschema@.incident_escalation_policy,
                @extschema@.incident_escalation_level, @extschema@.incident_escalations
   TO incident_viewer;
-- who is on call and what escalates next is read-only: viewers may ask; the
-- view needs the internal helpers it calls
GRANT EXECUTE ON FUNCTION
    @extschema@.incident_oncall(text, timestamptz),
    @extschema@.incident_oncall_schedule(text, timestamptz, timestamptz),
    @extschema@.incident_escalation_schedule(text, int),
    @extschema@.incident__require_rotation(text),
    @extschema@.incident__rotation_handoff(@extschema@.incident_rotation, bigint),
    @extschema@.incident__rotation_shift(@extschema@.incident_rotation, timestamptz),
    @extschema@.incident__oncall(text, timestamptz),
    @extschema@.incident__escalation_step(text, timestamptz, int),
    @extschema@.incident__escalation_target(text, text, timestamptz),
    @extschema@.incident__escalation_target_text(text, text)
   TO incident_viewer;

GRANT EXECUTE ON FUNCTION @extschema@.incident_escalate(text) TO incident_responder;

GRANT INSERT, UPDATE, DELETE ON @extschema@.incident_responder, @extschema@.incident_rotation,
                                @extschema@.incident_rotation_member, @extschema@.incident_rotation_override,
                                @extschema@.incident_team_role, @extschema@.incident_escalation_policy,
                                @extschema@.incident_escalation_level
   TO incident_admin;
GRANT USAGE ON SEQUENCE @extschema@.incident_rotation_override_id_seq TO incident_admin;

-- from extension/0.2.0/40_deleted_defaults.sql
/* extension/0.2.0/40_deleted_defaults.sql: pg_dump keeps the deletion of a seeded row.
 *
 * Seeded configuration rows (severities, checklists, classification rules,
 * the 24x7 calendar, team roles, the escalation policy) are made again by
 * CREATE EXTENSION when a dump is restored, so a row an admin deleted would
 * come back. Each deletion of such a table's row is remembered in
 * incident_deleted_default, which pg_dump keeps; restoring that table
 * deletes the seeded rows named there again.
 */

CREATE TABLE @extschema@.incident_deleted_default (
    table_name  text NOT NULL,
    key         jsonb NOT NULL CHECK (pg_catalog.jsonb_typeof(key) = 'object'),
    deleted_at  timestamptz NOT NULL DEFAULT @extschema@.incident_now(),
    deleted_by  text NOT NULL DEFAULT @extschema@.incident_invoker(),
    PRIMARY KEY (table_name, key)
);

COMMENT ON TABLE @extschema@.incident_deleted_default IS
'Configuration rows that were deleted, by table and key, so that a pg_dump restore, whose CREATE EXTENSION seeds the defaults again, deletes the seeded ones again. Written by triggers; admins do not edit it.';
COMMENT ON COLUMN @extschema@.incident_deleted_default.key IS 'The deleted row''s key columns as JSON, e.g. {"policy": "page-on-call", "level": 2}.';

CREATE FUNCTION @extschema@.incident__remember_deleted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO @extschema@.incident_deleted_default (table_name, key)
    SELECT TG_TABLE_NAME, pg_catalog.jsonb_object_agg(k, pg_catalog.to_jsonb(OLD) -> k)
      FROM pg_catalog.unnest(TG_ARGV) AS k
    ON CONFLICT (table_name, key) DO NOTHING;     -- the first deletion stays on record
    RETURN OLD;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__remember_deleted() IS
'Internal trigger: remembers the key of a deleted configuration row (the trigger''s arguments name the key columns) in incident_deleted_default.';

CREATE FUNCTION @extschema@.incident__delete_again()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gone record;
    key_match text;
BEGIN
    -- Rows remembered by a deletion that is happening now need nothing more.
    -- Rows restored by pg_dump (or written by hand) delete the seeded row of
    -- their key if it is still as seeded: children before parents, so that
    -- the items of a deleted checklist go before the checklist.
    IF pg_catalog.pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    FOR gone IN
        SELECT n.table_name, n.key
          FROM new_rows n
          JOIN pg_catalog.pg_class c
            ON c.relname = n.table_name AND c.relnamespace = '@extschema@'::regnamespace
         ORDER BY pg_catalog.array_position(ARRAY['incident_checklist_template_item', 'incident_checklist_template',
                                                  'incident_escalation_level', 'incident_escalation_policy',
                                                  'incident_team_role', 'incident_calendar_hours', 'incident_calendar',
                                                  'incident_classify_rule', 'incident_severity'], n.table_name::text),
                  n.key::text
    LOOP
        SELECT pg_catalog.string_agg(pg_catalog.format('pg_catalog.to_jsonb(t.%I) = ($1 -> %L)', k, k), ' AND ')
          INTO key_match
          FROM pg_catalog.jsonb_object_keys(gone.key) AS k;
        BEGIN
            EXECUTE pg_catalog.format('DELETE FROM @extschema@.%I t WHERE t.is_default AND %s', gone.table_name, key_match)
              USING gone.key;
        EXCEPTION WHEN foreign_key_violation THEN
            RAISE WARNING 'could not delete the seeded row % of % again', gone.key, gone.table_name
                USING DETAIL = SQLERRM,
                      HINT = 'Delete it by hand once what refers to it is gone.';
        END;
    END LOOP;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__delete_again() IS
'Internal trigger: when incident_deleted_default gets rows from outside a deletion (a pg_dump restore), deletes the pristine seeded rows with those keys, children before parents.';

CREATE TRIGGER incident_deleted_default_apply
    AFTER INSERT ON @extschema@.incident_deleted_default
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.incident__delete_again();

CREATE TRIGGER incident_severity_deleted
    BEFORE DELETE ON @extschema@.incident_severity
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('severity');
CREATE TRIGGER incident_checklist_template_deleted
    BEFORE DELETE ON @extschema@.incident_checklist_template
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('checklist');
CREATE TRIGGER incident_checklist_template_item_deleted
    BEFORE DELETE ON @extschema@.incident_checklist_template_item
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('checklist', 'item_no');
CREATE TRIGGER incident_classify_rule_deleted
    BEFORE DELETE ON @extschema@.incident_classify_rule
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('name');
CREATE TRIGGER incident_calendar_deleted
    BEFORE DELETE ON @extschema@.incident_calendar
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('name');
CREATE TRIGGER incident_calendar_hours_deleted
    BEFORE DELETE ON @extschema@.incident_calendar_hours
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('calendar', 'dow', 'starts');
CREATE TRIGGER incident_team_role_deleted
    BEFORE DELETE ON @extschema@.incident_team_role
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('role');
CREATE TRIGGER incident_escalation_policy_deleted
    BEFORE DELETE ON @extschema@.incident_escalation_policy
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('name');
CREATE TRIGGER incident_escalation_level_deleted
    BEFORE DELETE ON @extschema@.incident_escalation_level
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__remember_deleted('policy', 'level');

SELECT pg_catalog.pg_extension_config_dump('@extschema@.incident_deleted_default', '');

REVOKE ALL ON FUNCTION @extschema@.incident__remember_deleted() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.incident__delete_again() FROM PUBLIC;
GRANT SELECT ON @extschema@.incident_deleted_default TO incident_viewer;
