// Every handle here releases through [Symbol.dispose] (`using`). Node.js
// before 18.18 has no Symbol.dispose; give it the one later versions use, so
// the classes' method keys are right when their modules evaluate. Written as
// plain JavaScript: build/bundle-options.ts puts this file's code, as it is,
// at the top of the CLI bundle. (Reflect.set does nothing where the symbol exists.)
Reflect.set(Symbol, 'dispose', Symbol.dispose ?? Symbol.for('nodejs.dispose'));
