"""The text a model reads: the corpus found, downloaded and read as each edition reads it (corpus, download), the
shipped Time Machine (corpora/) and the fallback lyrics (fallback/), its minibatches (sampling), and the prefix a
generation starts from, converted to the corpus's script (convert)."""
