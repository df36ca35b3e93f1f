"""`slmtune label`: teacher labelling (teacher.py), which texts to label (select.py), the job
(label.py)."""
