from molw2s.cli import main

main()
