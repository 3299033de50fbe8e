// Every handle here releases through [Symbol.dispose] (`using`). Node.js
// before 18.18 has no Symbol.dispose; give it the one later versions use, so
// the classes' method keys are right when their modules evaluate.
(Symbol as { dispose?: symbol }).dispose ??= Symbol.for('nodejs.dispose');
