# وحدة تحكم الامتثال.
console-title = وحدة تحكم الامتثال
console-intro = ما اختاره العملاء، ونتائج الاستبيانات، والطلبات المستحقة، وسلامة سجل التدقيق.
console-signed-in-as = تم تسجيل الدخول باسم { $name } ({ $role })
console-role-compliance = مسؤول امتثال
console-role-admin = مسؤول النظام
console-nav-label = أقسام وحدة التحكم
console-overview = نظرة عامة
console-section-rates = معدلات الموافقة
console-section-rates-text = لكل غرض وولاية قضائية: كم عميلاً سمح به، وكم رفضه، وكم لم يُجب بعد.
console-section-surveys = نتائج الاستبيانات
console-section-surveys-text = نتيجة كل استبيان NPS أسبوعاً بأسبوع، مع هامش الخطأ وعدد الإجابات.
console-section-followups = متابعات المنتقدين
console-section-followups-text = عملاء أعطوا تقييماً منخفضاً وينتظرون الرد.
console-section-requests = الطلبات المستحقة
console-section-requests-text = طلبات أصحاب البيانات المتأخرة أو المستحقة خلال الأيام السبعة القادمة.
console-section-audit = سجل التدقيق
console-section-audit-text = تحقّق من أن السجل لم يُعدَّل، ونزّل الأحداث لفترة محددة.
error-role-title = غير متاح لدورك
error-role = لا يمكن لدورك فتح هذا الجزء من وحدة التحكم. اطلب ذلك من مسؤول النظام إذا احتجت إليه.

# الرسوم البيانية.
chart-segment = { $series }: { $count } ({ $share }٪)
chart-nps-point = { $period }: NPS { $score } ± { $margin } (العدد = { $count })
chart-count = العدد = { $count }

# معدلات الموافقة.
rates-intro = تُحتسب هنا إجابة العميل نفسه عن الغرض فقط. وعند غيابها يقرر الأساس المبيَّن: إذا لزمت الموافقة يبقى الاستخدام متوقفاً، وإذا كان الانسحاب متاحاً يبقى مفعّلاً.
rates-empty = لا يوجد عملاء بعد.
rates-allow = سمح
rates-deny = رفض
rates-no-answer = بلا إجابة
rates-jurisdiction = { $name } — { $customers } عميل
rates-chart-title = الإجابات لكل غرض: { $jurisdiction }
rates-chart-desc = لكل غرض، نسبة العملاء البالغ عددهم { $customers } الذين سمحوا به أو رفضوه أو لم يجيبوا. يعرض الجدول أدناه الأرقام نفسها.
rates-table-caption = العملاء حسب الإجابة مع نسبتهم
rates-col-purpose = الغرض
rates-col-basis = عند غياب الإجابة
rates-col-total = العملاء
rates-cell = { $count } ({ $share }٪)
basis-opt-in = تلزم الموافقة
basis-opt-out = مفعّل حتى الانسحاب
basis-legitimate-interest = مصلحة مشروعة
basis-notice-only = مفعّل دائماً
basis-prohibited = غير مسموح

# نتائج الاستبيانات.
surveys-intro = صافي نقاط الترويج (NPS) لكل أسبوع (يبدأ الأسبوع يوم الاثنين بالتوقيت العالمي). الشريط المظلل هو هامش الخطأ عند مستوى ثقة ٩٥٪: كلما قلّت الإجابات اتسع.
surveys-empty = لا يوجد استبيان يطرح سؤال NPS بعد.
surveys-no-answers = لا توجد إجابات بعد.
surveys-overall = صافي نقاط الترويج الإجمالي { $score } ± { $margin } من { $count } إجابة.
surveys-chart-title = { $survey }: صافي نقاط الترويج لكل أسبوع
surveys-table-caption = الأرقام لكل أسبوع
surveys-col-week = أسبوع
surveys-col-answers = الإجابات
surveys-col-nps = NPS
surveys-col-margin = هامش الخطأ (±)

# المتابعات.
followups-intro = عملاء أجابوا بـ ٦ أو أقل. أغلق كل متابعة بعد أن يتصرف أحدهم بشأنها، مع ملاحظة بما تم.
followups-read-only = يمكن لمسؤول النظام فقط إغلاق المتابعات؛ ويمكنك رؤيتها هنا.
followups-empty = لا توجد متابعات مفتوحة.
followups-closed = تم إغلاق المتابعة.
followups-already-closed = كانت تلك المتابعة مغلقة من قبل.
followup-heading = { $survey }: التقييم { $score }
followup-subject = العميل
followup-opened = فُتحت في { $date }
followup-resolution-label = ما الذي تم (اختياري)
followup-resolution-too-long = يرجى أن تكون الملاحظة أقل من { $max } حرف.
followup-close-button = أغلق هذه المتابعة

# الطلبات.
requests-console-intro = طلبات أصحاب البيانات المفتوحة التي انقضى موعدها أو يحل خلال الأيام السبعة القادمة، الأكثر إلحاحاً أولاً.
requests-overdue-heading = متأخرة
requests-due-heading = مستحقة خلال الأيام السبعة القادمة
requests-none-overdue = لا يوجد شيء متأخر.
requests-none-due = لا يوجد شيء آخر مستحق خلال الأيام السبعة القادمة.
request-col-kind = الطلب
request-col-status = الحالة
request-col-subject = العميل
request-col-jurisdiction = الولاية القضائية
request-col-received = تاريخ الاستلام
request-col-due = الموعد النهائي
request-detail-title = طلب صاحب بيانات
request-back = العودة إلى الطلبات المستحقة
request-overdue = هذا الطلب متأخر.
request-field-id = المرجع
request-field-extended = تم تمديد الموعد
request-extended-yes = نعم
request-extended-no = لا
request-details-heading = ما الذي طُلب
request-steps-heading = السجل
step-col-when = متى
step-col-by = بواسطة
step-col-note = ملاحظة
recipients-heading = الجهات المستلمة التي أُبلغت
recipients-intro = يجب إبلاغ كل جهة تتلقى بيانات العميل بهذا الطلب وأن تؤكد أنها نفذته.
recipients-none = لا توجد جهة معنية، أو أن الطلب لم يكتمل بعد.
recipient-col-name = الجهة المستلمة
recipient-col-state = الحالة
recipient-col-told = أُبلغت
recipient-col-acknowledged = أكدت
recipient-state-pending = لم تُبلغ بعد
recipient-state-told = أُبلغت ولم تؤكد
recipient-state-acknowledged = أكدت
recipient-by-webhook = عبر رد الرابط الشبكي
recipient-by-token = برمزها

# سجل التدقيق.
audit-intro = كل تغيير حدث مرتبط بالحدث الذي قبله، ونقاط تحقق موقَّعة تثبّت السلسلة. تحقّق من أن شيئاً لم يُغيَّر أو يُحذف أو يُعَد ترتيبه، أو نزّل الأحداث لفترة محددة.
audit-verify-heading = تحقّق من السلسلة
audit-verify-help = يعيد قراءة كل حدث ويقارن السلسلة بنقاط التحقق الموقَّعة. قد يستغرق ذلك بعض الوقت في سجل طويل.
audit-verify-button = تحقّق من السلسلة الآن
audit-ok = السلسلة سليمة: تم فحص { $events } حدث مقابل { $checkpoints } نقطة تحقق موقَّعة.
audit-broken = السلسلة مكسورة عند الحدث { $seq }: { $problem }
audit-head-seq = آخر حدث تم فحصه
audit-head-hash = بصمته
audit-signed-head = الرأس الموقَّع
audit-signed-head-help = توقيع من هذه الخدمة على آخر حدث تم فحصه وعلى النتيجة، يمكن لأي شخص التحقق منه بالمفاتيح العامة في ‎/.well-known/jwks.json‎.
audit-export-heading = تنزيل الأحداث
audit-export-help = الأحداث من اليوم الأول إلى اليوم الأخير، وكلاهما مشمول (بالتوقيت العالمي)؛ اترك التاريخ فارغاً لعدم التقييد. ينتهي الملف بنقطة تحقق موقَّعة، لذا يمكن فحصه دون اتصال بالأمر «consentry audit verify». ويُسجَّل التنزيل نفسه في السجل.
audit-from-label = اليوم الأول
audit-to-label = اليوم الأخير
audit-format-legend = صيغة الملف
audit-format-jsonl = JSON Lines
audit-format-csv = CSV
audit-export-button = تنزيل
audit-date-invalid = أدخل التاريخ بالصيغة YYYY-MM-DD.
audit-range-invalid = لا يمكن أن يكون اليوم الأخير قبل اليوم الأول.
console-brand = لوحة الامتثال في Consentry
