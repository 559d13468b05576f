from drbackup.cli.main import entry

entry()
