# صفحة الاستطلاع التي يفتحها رابط الاستطلاع.
survey-title = رأيك
survey-nps-low = ٠ = غير محتمل إطلاقاً
survey-nps-high = ١٠ = محتمل جداً
survey-rating-low = الأدنى
survey-rating-high = الأعلى
survey-yes = نعم
survey-no = لا
survey-send = إرسال
survey-required = يرجى الإجابة عن هذا السؤال.
survey-invalid = لا يمكننا قبول هذه الإجابة؛ يرجى التحقق منها.
survey-thanks-title = شكراً لك!
survey-thanks = تم حفظ إجاباتك. إنها تساعدنا على التحسن.
survey-none-title = لا يوجد ما تجيب عنه الآن
survey-none = لا يوجد استطلاع لك في الوقت الحالي. شكراً لوقتك.
