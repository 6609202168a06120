from segtutor.cli import main

raise SystemExit(main())
