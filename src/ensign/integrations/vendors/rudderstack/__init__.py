"""RudderStack: its settings schema (`schema`) and its requests (`requests`)."""
