"""The micro forms (TFLM) come in the next commit."""

FORMS = ()
