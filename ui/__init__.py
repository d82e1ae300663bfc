"""Streamlit helpers shared by the pages: they own every value a browser session holds, and the views the pages
share. tl_core never imports streamlit; everything that does lives here or in app_pages/, and the pages read and
write session state only through these modules.

- services: the process-wide run store, job manager, session store and backbone descriptions
- warmup: importing the engine and warming the classroom demo up, once per process, in the background
- launch, server_process: `python -m ui.launch`, and starting that server as a process (the browser tests and
  the benchmarks)
- session_id: the browser session's id, kept in the URL (?s=...)
- settings: the registry of the settings the pages share, kept across pages and refreshes
- uploads: the session's uploaded data set; data_choice: the data the session trains on and its split
- run_config: what the settings train (the run plan) and the TrainConfig Start submits
- picks, messages: pickers whose options come and go; notes a callback leaves, one-line errors
- train_runs, demo_session: the Train page's runs and Home's classroom demo in this session
- lesson_session, lesson_view, lesson_teacher, lesson_student: the Lesson page: this session's seat in a class,
  the choice of lessons, the teacher's screen and a student's
- views, efficiency, ranking, recipes_view: views drawn on several pages or too large for one
- wording, table_cells, effective_split: counts and data names in words, table cells (an en dash for empty), the
  split the data really gave
- state: names kept for code outside ui/ and app_pages/
"""
