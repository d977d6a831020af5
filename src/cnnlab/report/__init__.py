"""Tables, figures and the HTML/Markdown lab report, built only from recorded runs."""
