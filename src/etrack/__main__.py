from etrack.cli import main

main()
