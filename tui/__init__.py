"""The Textual app: renders sfttop.core state; nothing here computes a finding."""
