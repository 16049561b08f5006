# The compliance console.
console-title = Compliance console
console-intro = What customers chose, how surveys score, which requests are due, and whether the audit log is intact.
console-signed-in-as = Signed in as { $name } ({ $role })
console-role-compliance = compliance officer
console-role-admin = administrator
console-nav-label = Console sections
console-overview = Overview
console-section-rates = Consent rates
console-section-rates-text = For each purpose and jurisdiction: how many customers allowed it, refused it, or have not answered.
console-section-surveys = Survey scores
console-section-surveys-text = Each NPS survey's score week by week, with its margin of error and the number of answers.
console-section-followups = Detractor follow-ups
console-section-followups-text = Customers who gave a low score and are waiting to hear back.
console-section-requests = Requests due
console-section-requests-text = Data subject requests that are overdue or due in the next 7 days.
console-section-audit = Audit log
console-section-audit-text = Verify that the log was not altered, and download events for a period.
error-role-title = Not available to your role
error-role = Your role cannot open this part of the console. Ask an administrator if you need it.

# Charts.
chart-segment = { $series }: { $count } ({ $share }%)
chart-nps-point = { $period }: NPS { $score } ± { $margin } (n = { $count })
chart-count = n = { $count }

# Consent rates.
rates-intro = Only a customer's own answer for a purpose counts here. Without one, the basis shown decides: with consent needed the use stays off, with an opt-out it stays on.
rates-empty = There are no customers yet.
rates-allow = Allowed
rates-deny = Refused
rates-no-answer = No answer
rates-jurisdiction = { $name } — { $customers } customers
rates-chart-title = Answers per purpose: { $jurisdiction }
rates-chart-desc = For each purpose, the share of the { $customers } customers who allowed it, refused it, or have not answered. The table below has the same figures.
rates-table-caption = Customers per answer, with their share
rates-col-purpose = Purpose
rates-col-basis = Without an answer
rates-col-total = Customers
rates-cell = { $count } ({ $share }%)
basis-opt-in = Consent needed
basis-opt-out = On until opt-out
basis-legitimate-interest = Legitimate interest
basis-notice-only = Always on
basis-prohibited = Not allowed

# Survey scores.
surveys-intro = The Net Promoter Score per week (weeks start on Monday, UTC). The shaded band is the 95% margin of error: the fewer the answers, the wider it is.
surveys-empty = No survey asks an NPS question yet.
surveys-no-answers = No answers yet.
surveys-overall = Overall NPS { $score } ± { $margin } from { $count } answers.
surveys-chart-title = { $survey }: NPS per week
surveys-table-caption = Figures per week
surveys-col-week = Week of
surveys-col-answers = Answers
surveys-col-nps = NPS
surveys-col-margin = Margin of error (±)

# Follow-ups.
followups-intro = Customers who answered 6 or less. Close each follow-up once someone has acted on it, with a note of what was done.
followups-read-only = Only an administrator can close follow-ups; you can see them here.
followups-empty = There are no open follow-ups.
followups-closed = The follow-up was closed.
followups-already-closed = That follow-up had already been closed.
followup-heading = { $survey }: score { $score }
followup-subject = Customer
followup-opened = Opened on { $date }
followup-resolution-label = What was done (optional)
followup-resolution-too-long = Please keep this note under { $max } characters.
followup-close-button = Close this follow-up

# Requests.
requests-console-intro = Open data subject requests whose deadline has passed or falls in the next 7 days, the most urgent first.
requests-overdue-heading = Overdue
requests-due-heading = Due in the next 7 days
requests-none-overdue = Nothing is overdue.
requests-none-due = Nothing else is due in the next 7 days.
request-col-kind = Request
request-col-status = Status
request-col-subject = Customer
request-col-jurisdiction = Jurisdiction
request-col-received = Received
request-col-due = Due
request-detail-title = Data subject request
request-back = Back to the requests due
request-overdue = This request is overdue.
request-field-id = Reference
request-field-extended = Deadline extended
request-extended-yes = Yes
request-extended-no = No
request-details-heading = What was asked
request-steps-heading = History
step-col-when = When
step-col-by = By
step-col-note = Note
recipients-heading = Recipients told
recipients-intro = Each recipient of the customer's data must be told of this request and confirm it acted on it.
recipients-none = No recipient is concerned, or the request is not completed yet.
recipient-col-name = Recipient
recipient-col-state = State
recipient-col-told = Told
recipient-col-acknowledged = Confirmed
recipient-state-pending = Not told yet
recipient-state-told = Told, not confirmed
recipient-state-acknowledged = Confirmed
recipient-by-webhook = by its webhook's answer
recipient-by-token = with its token

# Audit log.
audit-intro = Every change is an event linked to the one before it, and signed checkpoints pin the chain. Check that nothing was changed, removed or reordered, or download events for a period.
audit-verify-heading = Verify the chain
audit-verify-help = Reads every event again and compares the chain with its signed checkpoints. On a long log this takes a while.
audit-verify-button = Verify the chain now
audit-ok = The chain is intact: { $events } events checked against { $checkpoints } signed checkpoints.
audit-broken = The chain is broken at event { $seq }: { $problem }
audit-head-seq = Last event checked
audit-head-hash = Its hash
audit-signed-head = Signed head
audit-signed-head-help = A signature by this service over the last event checked and the result, which anyone can check with the public keys at /.well-known/jwks.json.
audit-export-heading = Download events
audit-export-help = Events from the first day to the last day, both included (UTC); leave a date empty for no limit. The file ends with a signed checkpoint, so it can be checked offline with “consentry audit verify”. The download is itself recorded in the log.
audit-from-label = First day
audit-to-label = Last day
audit-format-legend = File format
audit-format-jsonl = JSON Lines
audit-format-csv = CSV
audit-export-button = Download
audit-date-invalid = Enter a date as YYYY-MM-DD.
audit-range-invalid = The last day cannot be before the first day.
console-brand = Consentry compliance console
