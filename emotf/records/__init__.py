"""Records: the TFRecord schema (`schema`), the records folder (`folder`) and preprocessing (`writer`)."""
