//! A valid WebAssembly component that targets some other world, so the tests
//! can check that Wicket refuses it at load time with a clear reason.

wit_bindgen::generate!({
    inline: "
        package test:elsewhere;
        world greeter {
            export greet: func(name: string) -> string;
        }
    ",
});

struct Greeter;

impl Guest for Greeter {
    fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}

export!(Greeter);
