"""Tests of the admin kit: dialplan and AMI snippets, prompts, `ivr-survey check`, Docker files."""
