/* extension/20_classify.sql: severity classification.
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
        RAISE EXCEPTION 'invalid classification rule name "%"', @extschema@.incident__quote(NEW.name)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A rule name has lower-case letters, digits and underscores and starts with a letter, such as "database_down".';
    END IF;
    IF NEW.severity IS NULL THEN
        RAISE EXCEPTION 'severity of classification rule "%" must not be null', @extschema@.incident__quote(NEW.name)
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a severity: P1, P2, P3 or P4, or its name (see incident_severity).';
    END IF;
    BEGIN
        NEW.severity := @extschema@.incident_severity_normalize(NEW.severity);
    EXCEPTION WHEN invalid_parameter_value THEN
        GET STACKED DIAGNOSTICS problem = PG_EXCEPTION_HINT;
        RAISE EXCEPTION 'invalid severity "%" in classification rule "%"', @extschema@.incident__quote(NEW.severity), @extschema@.incident__quote(NEW.name)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = problem;
    END;
    IF NEW.category IS NOT NULL THEN
        NEW.category := pg_catalog.lower(pg_catalog.btrim(NEW.category));
        IF NEW.category !~ '^[a-z][a-z0-9_]*$' THEN
            RAISE EXCEPTION 'invalid category "%" in classification rule "%"', @extschema@.incident__quote(NEW.category), @extschema@.incident__quote(NEW.name)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A category has lower-case letters, digits and underscores and starts with a letter, such as "database" or "feature_request".';
        END IF;
    END IF;
    IF NEW.pattern IS NULL THEN
        RAISE EXCEPTION 'pattern of classification rule "%" must not be null', @extschema@.incident__quote(NEW.name)
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give a regular expression; ''^'' matches every text.';
    END IF;
    IF NEW.pattern = '' THEN
        RAISE EXCEPTION 'invalid pattern "" in classification rule "%"', @extschema@.incident__quote(NEW.name)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'An empty pattern matches every text, so the rule would decide every classification it reaches.',
                  HINT = 'Give a regular expression for what the rule recognises; a catch-all rule uses ''^'' on purpose.';
    END IF;
    BEGIN
        PERFORM '' OPERATOR(pg_catalog.~*) NEW.pattern;
    EXCEPTION WHEN invalid_regular_expression THEN
        GET STACKED DIAGNOSTICS problem = MESSAGE_TEXT;
        RAISE EXCEPTION 'invalid pattern "%" in classification rule "%"', @extschema@.incident__quote(NEW.pattern), @extschema@.incident__quote(NEW.name)
            USING ERRCODE = 'invalid_regular_expression',
                  DETAIL = pg_catalog.format('PostgreSQL says: %s.', problem),
                  HINT = 'The pattern is a PostgreSQL advanced regular expression, matched case-insensitively; test it with SELECT ''some text'' ~* ''pattern''.';
    END;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@.incident__classify_rule_check() IS
'Internal trigger: refuses a classification rule with an invalid name, pattern, severity or category, naming the rule; stores severities as P1..P4 and categories in lower case.';

-- Triggers of the same kind fire in name order: check, then edited/restore
-- (those of incident__seeded_table).
CREATE TRIGGER incident_classify_rule_check
    BEFORE INSERT OR UPDATE ON @extschema@.incident_classify_rule
    FOR EACH ROW EXECUTE FUNCTION @extschema@.incident__classify_rule_check();
SELECT @extschema@.incident__seeded_table('@extschema@.incident_classify_rule', 'name');
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

CREATE FUNCTION @extschema@.incident__choose_severity(severity text, title text, description text,
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
        RAISE EXCEPTION 'could not classify incident "%"', @extschema@.incident__quote(title)
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
-- Privileges
------------------------------------------------------------------------------

GRANT EXECUTE ON FUNCTION @extschema@.incident_classify(text), @extschema@.incident_classify(jsonb),
                          @extschema@.incident_classify_explain(text), @extschema@.incident_classify_explain(jsonb)
   TO incident_viewer;
GRANT SELECT ON @extschema@.incident_classify_rule TO incident_viewer;
GRANT INSERT, UPDATE, DELETE ON @extschema@.incident_classify_rule TO incident_admin;
