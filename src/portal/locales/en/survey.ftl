# The survey page a survey link opens.
survey-title = Your opinion
survey-nps-low = 0 = not at all likely
survey-nps-high = 10 = extremely likely
survey-rating-low = Lowest
survey-rating-high = Highest
survey-yes = Yes
survey-no = No
survey-send = Send
survey-required = Please answer this question.
survey-invalid = This answer is not one we can take; please check it.
survey-thanks-title = Thank you!
survey-thanks = Your answers were saved. They help us improve.
survey-none-title = Nothing to answer right now
survey-none = There is no survey for you at the moment. Thank you for your time.
